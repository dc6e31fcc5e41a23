// Package eventlog is hookstream's durable log: a NATS JetStream stream of
// events and a key-value bucket of quarantined requests, on an embedded
// in-process server by default or on an external NATS cluster, with an
// on-disk index of recent event ids for dedup.
package eventlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/internal/config"
	"github.com/hookstream/hookstream/internal/idindex"
	"github.com/hookstream/hookstream/internal/tlsconf"
	"github.com/hookstream/hookstream/service/budget"
	"github.com/hookstream/hookstream/service/normalize"
	"github.com/hookstream/hookstream/service/tracing"
)

// Subject layout: hookstream.events.<source>.<vendor>.<entity>.<action>.<bucket>,
// where bucket is the first two hex digits of the event id. The first four
// tokens let coarse filters (source, vendor, type) run inside NATS as
// consumer subject filters. JetStream keeps an in-memory index entry per
// distinct subject (measured: about 250 bytes), so the id itself is not in
// the subject: that would grow memory with every event. The bucket keeps
// the number of subjects bounded (types x 256) while GetEvent reads only
// 1/256 of the log.
const (
	subjectPrefix     = "hookstream.events"
	defaultStream     = "HOOKSTREAM_EVENTS"
	defaultQuarantine = "hookstream_quarantine"
)

// DefaultMinFreeDisk is Config.MinFreeDisk's default: room for the
// embedded server to finish what it is writing, delivery's records and a
// compaction, after ingest stops.
const DefaultMinFreeDisk = 256 << 20

// Errors returned by the log. ErrUnavailable wraps every failure to reach
// or write the log, so callers can answer 503 and let the vendor retry.
var (
	ErrUnavailable = errors.New("event log unavailable")
	// ErrDiskShort is ErrUnavailable while the disk guard refuses writes:
	// the guard logs that once, so callers need not log each refusal.
	ErrDiskShort = fmt.Errorf("%w: disk nearly full", ErrUnavailable)
	ErrNotFound  = errors.New("not found")
	ErrTooLarge  = errors.New("message exceeds the log's maximum message size")
	// ErrQuarantineFull is returned when the quarantine bucket is at its
	// size limit; nothing was stored.
	ErrQuarantineFull = errors.New("quarantine is full")
)

// Config configures the log. The zero value plus a DataDir is a working
// embedded log.
type Config struct {
	// DataDir holds the embedded server's storage and, in every mode, the
	// dedup index (unless IndexDir says otherwise).
	DataDir string
	// IndexDir holds the dedup index (default <DataDir>/idindex/<Stream>).
	// Each replica needs its own.
	IndexDir string
	// URL of an external NATS server or cluster (comma-separated). Empty
	// runs an embedded in-process server.
	URL string
	// CredsFile, User/Password, Token or NkeyFile authenticate to an
	// external server.
	CredsFile string
	User      string
	Password  string
	Token     string
	NkeyFile  string // a user's nkey seed
	// TLS to an external server: CA bundle, and a client certificate.
	TLSCA, TLSCert, TLSKey string
	// Replicas of the stream and bucket in a cluster (1 when embedded).
	Replicas int
	// Retention is how long events are kept (default 7 days).
	Retention time.Duration
	// DedupWindow is how long an event id is remembered for dedup
	// (default 2 hours; must be at least 1 hour). The ids live in the
	// on-disk dedup index, not in memory.
	DedupWindow time.Duration
	// GuardWindow is JetStream's own (in-memory) Nats-Msg-Id window, which
	// catches copies appended before the index has seen the first (default
	// 1 minute). Memory grows with rate x GuardWindow.
	GuardWindow time.Duration
	// SyncAlways makes the embedded server fsync every write; otherwise it
	// syncs every SyncInterval (default 2 minutes) and a process kill loses
	// nothing, an OS crash at most that interval.
	SyncAlways   bool
	SyncInterval time.Duration
	// GroupCommit says when concurrent appends share one write (an atomic
	// batch, one fsync) to the log; default GroupCommitAuto.
	GroupCommit GroupCommit
	// MaxPayload is the embedded server's maximum message size (default 8 MiB).
	MaxPayload int32
	// Stream and QuarantineBucket name the JetStream assets.
	Stream, QuarantineBucket string
	// QuarantineMaxBytes caps the quarantine bucket's size; when it is
	// full, Quarantine fails with ErrQuarantineFull. QuarantineMaxAge is how
	// long an entry is kept after its last write. Zero means no limit; the
	// server's defaults come from service/config. Both are applied to an
	// existing bucket at Open.
	QuarantineMaxBytes int64
	QuarantineMaxAge   time.Duration
	// MinFreeDisk is the free space kept on the file systems of the
	// embedded server's data dir and of the dedup index: below it, Append
	// and Quarantine refuse at once (ErrUnavailable) instead of filling
	// the disk (see diskguard.go). Default DefaultMinFreeDisk.
	MinFreeDisk int64
	// ConnectTimeout bounds the initial connect and setup (default config.DefaultConnectTimeout).
	ConnectTimeout time.Duration
	// WriteTimeout bounds one append (default 5 s).
	WriteTimeout time.Duration
	// LookupBudget caps the log reads of one Get (default
	// DefaultLookupBudget): an id older than the dedup window is searched
	// for by reading the log, newest first, until the budget is spent.
	LookupBudget int

	// minDedupWindow lowers DedupWindow's floor of 1 hour, so that tests
	// can hold events older than the window.
	minDedupWindow time.Duration
	// ReadBatchBytes caps one read for a client (a step of a Subscribe
	// catch-up or of a ListEvents page): it returns at least one event and
	// stops once it holds this many bytes (default 1 MiB).
	ReadBatchBytes int
	// ReadBudget caps the bytes of client reads in flight from NATS at
	// once, for the whole process (default 16 MiB); further reads wait.
	ReadBudget int64
	// ScanBytes ends a Scan (a ListEvents page) once it has read this many
	// bytes of events (default 2 MiB), so a page stays under what gRPC
	// clients accept by default whatever the events' size.
	ScanBytes int
}

func (c *Config) setDefaults() {
	if c.MinFreeDisk <= 0 {
		c.MinFreeDisk = DefaultMinFreeDisk
	}
	if c.Retention == 0 {
		c.Retention = config.DefaultRetention
	}
	if c.DedupWindow == 0 {
		c.DedupWindow = config.DefaultDedupWindow
	}
	if c.GuardWindow == 0 {
		c.GuardWindow = config.DefaultDedupGuard
	}
	if c.Replicas == 0 {
		c.Replicas = config.DefaultReplicas
	}
	if c.SyncInterval == 0 {
		c.SyncInterval = config.DefaultFsyncInterval
	}
	if c.MaxPayload == 0 {
		c.MaxPayload = config.DefaultMaxMessageSize
	}
	if c.Stream == "" {
		c.Stream = defaultStream
	}
	if c.QuarantineBucket == "" {
		c.QuarantineBucket = defaultQuarantine
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = config.DefaultConnectTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = config.DefaultWriteTimeout
	}
	if c.LookupBudget == 0 {
		c.LookupBudget = config.DefaultLookupBudget
	}
	if c.minDedupWindow == 0 {
		c.minDedupWindow = config.MinDedupWindow
	}
	if c.ReadBatchBytes <= 0 {
		c.ReadBatchBytes = config.DefaultStreamBuffer
	}
	if c.ReadBudget <= 0 {
		c.ReadBudget = config.DefaultReadBudget
	}
	if c.ScanBytes <= 0 {
		c.ScanBytes = 2 << 20
	}
}

// Log is an open event log. It is safe for concurrent use.
//
// It holds three NATS connections, so that readers and writers never share
// a failure domain: a server that cuts off a connection that falls behind
// (a slow consumer) cuts off only that one. nc carries writes (appends and
// their dedup checks, quarantine) and setup; feed carries the process's one
// reader of the whole log (the dedup indexer, which feeds live streams);
// reads carries what clients ask for (Subscribe catch-up, ListEvents,
// GetEvent). Every read is capped in bytes as well as in events.
type Log struct {
	cfg Config
	// writes says whether the latest append was taken (Ready).
	writes writeHealth
	// readSubject is where ReadBatch sends its direct gets (the stream's
	// direct get subject; a test points it at a silent responder).
	readSubject string
	log         *slog.Logger
	ns          *server.Server     // nil with an external server
	faults      *storeWatch        // the embedded server's failed writes
	stopRecover context.CancelFunc // ends recoverStore (embedded only)
	recoverDone chan struct{}      // closed when it has ended
	nc          *nats.Conn
	js          jetstream.JetStream
	stream      jetstream.Stream
	quarantine  jetstream.KeyValue
	// quarantineStream is the bucket's underlying stream (KV_<bucket>),
	// read directly for bounded scans.
	quarantineStream jetstream.Stream

	// msgReads counts the messages read by position or subject (Get and
	// the dedup check), for tests.
	msgReads atomic.Uint64

	feed    *nats.Conn
	feedJS  jetstream.JetStream
	reads   *nats.Conn
	rstream jetstream.Stream    // the stream, through reads
	rjs     jetstream.JetStream // JetStream on the reads connection
	// readBudget holds the bytes of client reads in flight (ReadBatch);
	// largestRead is the largest event read so far.
	readBudget  *budget.Budget
	largestRead atomic.Int64

	setupInfo *jetstream.StreamInfo // the stream as setup left it
	damage    *Damage               // what was found lost at open, if anything
	index     *indexer
	disk      *diskGuard
	// group writes appends when they are grouped (nil otherwise).
	group *committer
	// syncer runs the shared syncs (nil unless cfg.sharedSync()).
	syncer    *syncer
	stopIndex context.CancelFunc
	indexDone chan struct{}
}

// Open starts the embedded server (or connects to the external one) and
// creates or updates the stream and the quarantine bucket.
func Open(ctx context.Context, cfg Config, logger *slog.Logger) (*Log, error) {
	cfg.setDefaults()
	if cfg.DedupWindow < cfg.minDedupWindow {
		return nil, fmt.Errorf("eventlog: dedup window %s is shorter than %s (vendors retry for minutes, and redeliveries come later)", cfg.DedupWindow, cfg.minDedupWindow)
	}
	if cfg.LookupBudget < minLookupBudget {
		return nil, fmt.Errorf("eventlog: lookup budget %d is below %d (a search needs a few reads to find its way)", cfg.LookupBudget, minLookupBudget)
	}
	if cfg.DedupWindow > cfg.Retention {
		return nil, fmt.Errorf("eventlog: dedup window %s is longer than retention %s", cfg.DedupWindow, cfg.Retention)
	}
	if cfg.GuardWindow < 100*time.Millisecond || cfg.GuardWindow > cfg.DedupWindow {
		return nil, fmt.Errorf("eventlog: guard window %s must be between 100ms and the dedup window %s", cfg.GuardWindow, cfg.DedupWindow)
	}
	if cfg.DataDir == "" && cfg.IndexDir == "" {
		return nil, errors.New("eventlog: a data dir is needed (it holds the dedup index)")
	}
	l := &Log{cfg: cfg, log: logger, readBudget: budget.New(cfg.ReadBudget), readSubject: directGetPrefix + cfg.Stream}
	opts := []nats.Option{
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		// No buffering while reconnecting: a write the log cannot take now
		// fails at once (503, the vendor retries) instead of waiting out
		// the write timeout.
		nats.ReconnectBufSize(-1),
		nats.Timeout(cfg.ConnectTimeout),
	}
	url := cfg.URL
	if url == "" {
		l.faults = &storeWatch{}
		ns, err := startEmbedded(cfg, logger, l.faults)
		if err != nil {
			return nil, err
		}
		l.ns = ns
		url = ns.ClientURL()
		if cfg.sharedSync() {
			if l.syncer, err = newSyncer(cfg.DataDir, cfg.Stream, "KV_"+cfg.QuarantineBucket); err != nil {
				l.Close()
				return nil, err
			}
		}
		// Each connection is its own in-process pipe.
		opts = append(opts, nats.InProcessServer(ns))
	} else {
		extra, err := externalOptions(cfg)
		if err != nil {
			return nil, err
		}
		opts = append(opts, extra...)
		// Keep retrying the first connect too, so a cluster that is still
		// starting does not stop us; setup below is bounded by ctx.
		opts = append(opts, nats.RetryOnFailedConnect(true))
	}
	var err error
	for _, c := range []struct {
		conn **nats.Conn
		name string
	}{{&l.nc, "hookstream"}, {&l.feed, "hookstream-feed"}, {&l.reads, "hookstream-reads"}} {
		if *c.conn, err = connect(ctx, url, c.name, cfg.ConnectTimeout, opts, logger); err != nil {
			l.Close()
			return nil, err
		}
	}
	if l.js, err = jetstream.New(l.nc); err != nil {
		l.Close()
		return nil, fmt.Errorf("eventlog: %w", err)
	}
	if l.feedJS, err = jetstream.New(l.feed); err != nil {
		l.Close()
		return nil, fmt.Errorf("eventlog: %w", err)
	}
	l.rjs, err = jetstream.New(l.reads)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("eventlog: %w", err)
	}
	setupCtx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	if err := l.setup(setupCtx); err != nil {
		l.Close()
		return nil, err
	}
	if l.rstream, err = l.rjs.Stream(setupCtx, cfg.Stream); err != nil {
		l.Close()
		return nil, fmt.Errorf("eventlog: stream %s: %w", cfg.Stream, err)
	}
	var dirs []string
	if l.ns != nil {
		dirs = append(dirs, cfg.DataDir)
	}
	dirs = append(dirs, l.indexDir())
	l.disk = newDiskGuard(dirs, uint64(cfg.MinFreeDisk), logger)
	if err := l.openIndex(ctx); err != nil {
		l.Close()
		return nil, err
	}
	l.disk.short() // a start on a nearly full disk says so at once
	if cfg.groupCommit() {
		l.group = newCommitter(l)
	}
	if l.ns != nil {
		// Last, once the log (its disk guard included) is whole.
		rctx, cancel := context.WithCancel(context.Background())
		l.stopRecover, l.recoverDone = cancel, make(chan struct{})
		go func() {
			defer close(l.recoverDone)
			l.recoverStore(rctx)
		}()
	}
	return l, nil
}

// connect opens one named connection to the log and waits until it is up.
func connect(ctx context.Context, url, name string, timeout time.Duration, opts []nats.Option, logger *slog.Logger) (*nats.Conn, error) {
	var lastTry atomic.Pointer[string]
	opts = append(slices.Clip(opts),
		nats.Name(name),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err == nil {
				return // closed on purpose (shutdown): nothing to warn about
			}
			logger.Warn("event log disconnected", "connection", name, "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			logger.Info("event log reconnected", "connection", name, "server", nc.ConnectedUrlRedacted())
		}),
		// A failed try (refused, wrong credentials, TLS) is said once per
		// kind of failure, not at every try.
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			msg := err.Error()
			if prev := lastTry.Swap(&msg); prev == nil || *prev != msg {
				logger.Warn("event log: cannot connect to NATS yet; retrying", "connection", name, "err", err)
			}
		}),
	)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("eventlog: connect: %w", err)
	}
	if err := waitConnected(ctx, nc, timeout); err != nil {
		nc.Close()
		return nil, err
	}
	return nc, nil
}

// waitConnected waits for the first connection, which RetryOnFailedConnect
// makes in the background.
func waitConnected(ctx context.Context, nc *nats.Conn, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for !nc.IsConnected() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			if err := nc.LastError(); err != nil { // wrong credentials, TLS, refused...
				return fmt.Errorf("eventlog: could not connect to NATS within %s: %w", timeout, err)
			}
			return fmt.Errorf("eventlog: could not reach NATS within %s", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

func startEmbedded(cfg Config, logger *slog.Logger, faults *storeWatch) (*server.Server, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("eventlog: a data dir is needed for the embedded server")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("eventlog: %w", err)
	}
	// The embedded server, which logs nothing here, would only time out on
	// a data dir it cannot write: say why at once.
	probe, err := os.CreateTemp(cfg.DataDir, ".write-check-*")
	if err != nil {
		return nil, fmt.Errorf("eventlog: the data dir %s is not writable: %w", cfg.DataDir, err)
	}
	_ = probe.Close()
	_ = os.Remove(probe.Name())
	ns, err := server.NewServer(embeddedOptions(cfg))
	if err != nil {
		return nil, fmt.Errorf("eventlog: embedded server: %w", err)
	}
	// Its warnings and errors are ours: a store that cannot write (a full
	// disk) says so only there.
	ns.SetLoggerV2(natsLogger{l: logger, faults: faults}, false, false, false)
	ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("eventlog: embedded server did not start within 30s (is the data dir locked by another hookstream?)")
	}
	return ns, nil
}

// embeddedOptions are the embedded server's options for cfg.
func embeddedOptions(cfg Config) *server.Options {
	return &server.Options{
		ServerName: "hookstream-embedded",
		DontListen: true, // reachable only in-process
		JetStream:  true,
		StoreDir:   cfg.DataDir,
		MaxPayload: cfg.MaxPayload,
		// A connection may have this much on its way before the server
		// cuts it off as a slow consumer: room for the reads in flight
		// (each may pass its cap by one message) and for the log reader.
		MaxPending: max(64<<20, 2*cfg.ReadBudget+4*int64(cfg.MaxPayload)),
		// With shared syncs, hookstream syncs once for many writes
		// (syncer), and the server only writes each message in place.
		SyncAlways:   cfg.SyncAlways && !cfg.sharedSync(),
		SyncInterval: cfg.SyncInterval,
		// nats-server would size JetStream's storage at three quarters of
		// the disk space free at start, and refuse to create (or, after the
		// disk filled further, to load) streams whose caps do not fit: about
		// 10 GiB with the defaults, so a smaller disk could not start at
		// all, and a running server could not restart. The caps are bounds
		// here, not reservations; what keeps the disk from filling is the
		// disk guard (Config.MinFreeDisk).
		JetStreamMaxStore: embeddedMaxStore,
		NoSigs:            true,
		NoLog:             true,
	}
}

func externalOptions(cfg Config) ([]nats.Option, error) {
	var opts []nats.Option
	switch {
	case cfg.CredsFile != "":
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	case cfg.User != "":
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	case cfg.Token != "":
		opts = append(opts, nats.Token(cfg.Token))
	case cfg.NkeyFile != "":
		opt, err := nats.NkeyOptionFromSeed(cfg.NkeyFile)
		if err != nil {
			return nil, fmt.Errorf("eventlog: log.nkey_file: %w", err)
		}
		opts = append(opts, opt)
	}
	if cfg.TLSCA != "" || cfg.TLSCert != "" || cfg.TLSKey != "" {
		tc, err := tlsconf.Client(cfg.TLSCA, cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("eventlog: %w", err)
		}
		opts = append(opts, nats.Secure(tc))
	}
	return opts, nil
}

// setup creates the stream and bucket, retrying while a cluster is still
// forming (no meta leader yet, not enough peers) until ctx ends.
func (l *Log) setup(ctx context.Context) error {
	// The try that the deadline cut short says only that; an earlier one
	// may have said why (no JetStream, no room for the replicas).
	var cause error
	for {
		// Each try has its own deadline: a request sent while a cluster is
		// still electing its leaders may get no answer at all, and must
		// not use up the whole connect timeout (a replica started together
		// with a new cluster would fail, although the cluster forms within
		// a second).
		actx, cancel := context.WithTimeout(ctx, setupAttempt)
		err := l.trySetup(actx)
		cancel()
		if err == nil {
			return nil
		}
		if errors.Is(err, ErrStreamConflict) {
			return err // the config, not the cluster: retrying cannot help
		}
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode == jsInsufficientStorage {
			// The streams' caps do not fit the server's storage, which
			// waiting does not change.
			return fmt.Errorf("%w (the quarantine reserves quarantine.max_bytes, %s, and delivery about 9 GiB, of the NATS servers' JetStream "+
				"max_file_store: raise it, or lower quarantine.max_bytes; see README, Durability)", err, formatBytes(uint64(max(l.cfg.QuarantineMaxBytes, 0))))
		}
		switch {
		case errors.Is(err, nats.ErrNoResponders):
			// Nothing answers the JetStream API: JetStream is off, or the
			// account has none (a cluster still forming answers soon).
			err = fmt.Errorf("%w (is JetStream enabled on the NATS server, nats-server -js, and for this account?)", err)
		case errors.As(err, &apiErr) && (apiErr.ErrorCode == jsClusterNoPeers || apiErr.ErrorCode == jsReplicasNotSupported):
			err = fmt.Errorf("%w (log.replicas %d needs as many JetStream servers in the cluster, each with room for the stream's storage)",
				err, l.cfg.Replicas)
		}
		if ctx.Err() == nil || !errors.Is(err, context.DeadlineExceeded) {
			cause = err
		}
		select {
		case <-ctx.Done():
			if cause != nil {
				return cause
			}
			return err
		case <-time.After(250 * time.Millisecond):
			l.log.Warn("event log not ready yet; retrying", "err", err)
		}
	}
}

// embeddedMaxStore is the embedded server's JetStream storage limit: far
// beyond any disk, so that only the disk guard and the streams' own caps
// bound what is stored.
const embeddedMaxStore = 1 << 50

// jsInsufficientStorage is JetStream's "insufficient storage resources
// available" (JSStorageResourcesExceededErr).
const jsInsufficientStorage jetstream.ErrorCode = 10047

// jsClusterNoPeers is JetStream's "no suitable peers for placement"
// (nats.go names no constant for it).
const jsClusterNoPeers jetstream.ErrorCode = 10005

// jsReplicasNotSupported is JetStream's "replicas > 1 not supported in
// non-clustered mode".
const jsReplicasNotSupported jetstream.ErrorCode = 10074

// setupAttempt bounds one try at creating the stream and bucket.
const setupAttempt = 5 * time.Second

func (l *Log) trySetup(ctx context.Context) error {
	cfg := jetstream.StreamConfig{
		Name:        l.cfg.Stream,
		Description: "hookstream canonical events",
		Subjects:    []string{subjectPrefix + ".>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      l.cfg.Retention,
		Duplicates:  l.cfg.GuardWindow,
		Replicas:    l.cfg.Replicas,
		AllowDirect: true,
		// Group commit writes atomic batches.
		AllowAtomicPublish: l.cfg.groupCommit(),
	}
	var err error
	if l.stream, err = l.js.Stream(ctx, cfg.Name); err == nil {
		have := l.stream.CachedInfo().Config
		if err := checkSubjects(have, cfg.Subjects); err != nil {
			return err
		}
		if err := l.guardLimits(cfg.Name, limitsOf(have), limitsOf(cfg)); err != nil {
			return err
		}
		cfg.FirstSeq = have.FirstSeq // fixed at creation
		l.stream, err = l.js.UpdateStream(ctx, cfg)
	} else if errors.Is(err, jetstream.ErrStreamNotFound) {
		if cfg.FirstSeq, err = l.continuePositions(); err == nil {
			l.stream, err = l.js.CreateStream(ctx, cfg)
		}
	}
	if err != nil {
		return fmt.Errorf("eventlog: stream %s: %w", l.cfg.Stream, err)
	}
	// Create or update: a bucket made by an older version without limits
	// gets them now. History 1 is what makes every message of the bucket's
	// stream its key's current value (or a delete marker), which the
	// bounded scans rely on.
	if err := l.GuardLimits(ctx, quarantineStreamName(l.cfg.QuarantineBucket),
		StreamLimits{Replicas: l.cfg.Replicas, MaxAge: l.cfg.QuarantineMaxAge, MaxBytes: l.cfg.QuarantineMaxBytes}); err != nil {
		return err
	}
	l.quarantine, err = l.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      l.cfg.QuarantineBucket,
		Description: "hookstream quarantined webhook requests",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    l.cfg.Replicas,
		MaxBytes:    l.cfg.QuarantineMaxBytes,
		TTL:         l.cfg.QuarantineMaxAge,
	})
	if err != nil {
		return fmt.Errorf("eventlog: quarantine bucket %s: %w", l.cfg.QuarantineBucket, err)
	}
	if l.quarantineStream, err = l.js.Stream(ctx, quarantineStreamName(l.cfg.QuarantineBucket)); err != nil {
		return fmt.Errorf("eventlog: quarantine bucket %s: %w", l.cfg.QuarantineBucket, err)
	}
	// A replicated stream answers only once it has a leader, which may
	// come a moment after its creation.
	if l.setupInfo, err = l.stream.Info(ctx); err != nil {
		return fmt.Errorf("eventlog: stream %s: %w", l.cfg.Stream, err)
	}
	return nil
}

// positionGap is how far past the last position the dedup index's
// checkpoint knew a new stream starts (see continuePositions): the index
// commits its checkpoint every commitEvery and at a clean stop, so a
// process that crashed may have handed out cursors up to commitEvery's
// worth of events past it.
const positionGap = 1 << 20

// continuePositions is the first position of an event stream about to be
// created: past every position of a stream of the same name this data dir
// knew (the dedup index's checkpoint), so that a consumer's cursor from a
// stream that was deleted never names an event of its successor, and
// resuming from it gives the new stream from its first event. 0 (JetStream
// starts at 1) when nothing is known.
func (l *Log) continuePositions() (uint64, error) {
	cp, ok, err := idindex.ReadCheckpoint(l.indexDir())
	if err != nil || !ok || !strings.HasPrefix(cp.Log, l.cfg.Stream+"@") || cp.Seq == 0 {
		return 0, err
	}
	first := cp.Seq + 1 + positionGap
	l.log.Warn("creating the event stream anew; its positions continue past the deleted stream's",
		"stream", l.cfg.Stream, "last_known_seq", cp.Seq, "first_seq", first)
	return first, nil
}

// MaxMessageSize is the largest message the log accepts.
func (l *Log) MaxMessageSize() int64 { return l.nc.MaxPayload() }

// DiskShort says, while the disk guard refuses writes, which file system
// is short of room and by how much; "" while there is room.
func (l *Log) DiskShort() string {
	if low := l.disk.short(); low != nil {
		return l.disk.describe(low)
	}
	return ""
}

// DiskFree reads the free space of the file systems of the log's
// directories (looked at again when the latest look is over a second
// old), and the free space the log keeps.
func (l *Log) DiskFree() (readings []DiskReading, keep uint64) {
	if l.disk == nil {
		return nil, 0
	}
	l.disk.short() // a fresh look when the latest is old
	if r := l.disk.readings.Load(); r != nil {
		readings = *r
	}
	return readings, l.disk.min
}

// Embedded reports whether the log runs in-process.
func (l *Log) Embedded() bool { return l.ns != nil }

// Ready reports whether the log is connected and can take writes: its
// dedup index is current.
func (l *Log) Ready() bool {
	if l.nc == nil || !l.nc.IsConnected() || l.index == nil {
		return false
	}
	if _, err := l.index.current(); err != nil {
		return false
	}
	return l.writes.ready(func() bool {
		// A write failed since the last that succeeded: connected is not
		// enough (a cluster that lost its quorum takes no writes), so ask
		// the stream, whose leader answers only while it has one.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := l.stream.Info(ctx)
		return err == nil
	})
}

// writeHealth tracks whether the log took the latest write, for Ready.
type writeHealth struct {
	failed, ok atomic.Int64 // unix nanoseconds of the latest failed and successful writes
	probedAt   atomic.Int64 // of the latest probe, while writes fail
	probedOK   atomic.Bool
}

func (h *writeHealth) record(err error) {
	now := time.Now().UnixNano()
	if err != nil {
		h.failed.Store(now)
	} else {
		h.ok.Store(now)
	}
}

// failHold is how long a failed write alone makes the log not ready. A
// stream leader that lost its quorum goes on answering for a few seconds
// before it steps down, so a probe right after the failure proves little.
const failHold = 10 * time.Second

// ready is true while the latest write succeeded (or none was made);
// after a failure, false for failHold, and then what probe says, asked at
// most once a second.
func (h *writeHealth) ready(probe func() bool) bool {
	failed := h.failed.Load()
	if failed <= h.ok.Load() {
		return true
	}
	now := time.Now().UnixNano()
	if now-failed < int64(failHold) {
		return false
	}
	if last := h.probedAt.Load(); now-last >= int64(time.Second) && h.probedAt.CompareAndSwap(last, now) {
		h.probedOK.Store(probe())
	}
	return h.probedOK.Load()
}

// Close stops the dedup indexer, disconnects and, when embedded, shuts
// the server down after flushing its stores.
func (l *Log) Close() {
	if l.stopRecover != nil {
		l.stopRecover()
		<-l.recoverDone // not in the middle of a restart
	}
	if l.group != nil {
		l.group.close()
	}
	if l.syncer != nil {
		l.syncer.close()
	}
	l.closeIndex()
	for _, nc := range []*nats.Conn{l.reads, l.feed, l.nc} {
		if nc != nil {
			_ = nc.Drain()
			nc.Close()
		}
	}
	if l.ns != nil {
		l.ns.Shutdown()
		l.ns.WaitForShutdown()
	}
}

// Subject returns the subject an event is stored under.
func Subject(ev *hookstreamv1.Event) string {
	entity, action, _ := strings.Cut(ev.GetType(), ".")
	return subject(ev.GetSource(), VendorToken(ev.GetVendor()), entity, action, bucket(ev.GetId()))
}

// FilterSubject builds a subject filter; "" stands for any value.
func FilterSubject(source, vendor, entity, action string) string {
	return subject(source, vendor, entity, action, "")
}

func subject(tokens ...string) string {
	var b strings.Builder
	b.Grow(len(subjectPrefix) + 48)
	b.WriteString(subjectPrefix)
	for _, t := range tokens {
		b.WriteByte('.')
		if t == "" {
			t = "*"
		}
		b.WriteString(t)
	}
	return b.String()
}

// bucket is the subject token that narrows a lookup by id.
func bucket(id string) string {
	if len(id) < 2 {
		return "xx"
	}
	return id[:2]
}

// VendorToken is the subject token of a vendor: its name in the vendor
// registry, derived from the enum value, so the log needs no vendor list.
func VendorToken(v hookstreamv1.Vendor) string { return normalize.Token(v) }

// Appended reports where an append landed.
type Appended struct {
	// Seq is the event's position in the log (for a duplicate: the
	// original's position).
	Seq uint64
	// Duplicate is true when the id was already in the log.
	Duplicate bool
}

// Append stores ev durably, deduplicated by its id. It returns only after
// the log has acknowledged the write (or, for a duplicate, after the
// original was read back).
func (l *Log) Append(ctx context.Context, ev *hookstreamv1.Event) (Appended, error) {
	data, err := Encode(ev)
	if err != nil {
		return Appended{}, err
	}
	return l.AppendEncoded(ctx, ev, data)
}

// Encode returns the encoding Append stores for ev, for AppendEncoded: a
// caller that looks at it first (ingest checks it for secrets) does not
// encode the event twice.
func Encode(ev *hookstreamv1.Event) ([]byte, error) {
	data, err := marshalEvent(ev)
	if err != nil {
		return nil, fmt.Errorf("eventlog: encode event: %w", err)
	}
	return data, nil
}

// AppendEncoded is Append of ev encoded by Encode as data; ev itself gives
// only the id and the subject, and must not have changed since.
func (l *Log) AppendEncoded(ctx context.Context, ev *hookstreamv1.Event, data []byte) (Appended, error) {
	if int64(len(data))+1024 > l.nc.MaxPayload() {
		return Appended{}, ErrTooLarge
	}
	guarded, err := l.index.current()
	if err != nil {
		return Appended{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	deadline := time.Now().Add(l.cfg.WriteTimeout)
	if guarded.Before(deadline) {
		deadline = guarded
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	switch orig, err := l.lookup(ctx, l.ingestRoute(), ev.GetId(), nil); {
	case err != nil:
		return Appended{}, err
	case orig != nil:
		// The original may have been stored a moment ago by an Append
		// still waiting for its sync: this answer waits for one too.
		return Appended{Seq: orig.Sequence, Duplicate: true}, l.syncEvents(ctx)
	}
	if err := l.disk.err(); err != nil {
		return Appended{}, err
	}
	app, err := l.write(ctx, Subject(ev), data, ev.GetId())
	if err == nil {
		err = l.syncEvents(ctx)
	}
	l.writes.record(err)
	return app, err
}

// write stores one event's message, deduplicated by JetStream on id, with
// group commit when it is on. ctx must have a deadline.
func (l *Log) write(ctx context.Context, subj string, data []byte, id string) (Appended, error) {
	if l.group != nil {
		r, err := l.group.append(ctx, subj, data, id)
		if err != nil || !r.alone {
			return r.app, err
		}
		// The batch failed: publish alone, as without group commit.
	}
	return l.publish(ctx, newMsg(ctx, subj, data, id, l.cfg.Stream))
}

// Stored is an event read back from the log with its position.
type Stored struct {
	// Event is set by Get and Scan; Tail leaves it to Decoded.
	Event *hookstreamv1.Event
	Seq   uint64
	// Pending is how many matching events follow this one in the log, when
	// it was read by a consumer (Tail, Scan).
	Pending uint64
	// Raw is the event's protobuf encoding as stored.
	Raw []byte
	// Trace is the trace context the event was stored with (zero when
	// tracing was off): deliveries of the event continue its trace.
	Trace tracing.Context

	lazy *lazyEvent
}

// traceOf reads the trace context stored in a log message's headers.
func traceOf(h nats.Header) tracing.Context {
	if len(h) == 0 {
		return tracing.Context{}
	}
	return tracing.Context{Parent: h.Get(tracing.HeaderParent), State: h.Get(tracing.HeaderState)}
}

func decodeRaw(raw *jetstream.RawStreamMsg) (Stored, error) {
	ev := &hookstreamv1.Event{}
	if err := proto.Unmarshal(raw.Data, ev); err != nil {
		return Stored{}, fmt.Errorf("eventlog: decode event at %d: %w", raw.Sequence, err)
	}
	return Stored{Event: ev, Seq: raw.Sequence, Trace: traceOf(raw.Header)}, nil
}

// LastSeqFor is the position of the newest event on subject (a filter
// subject from FilterSubject, or ">" for all), 0 when there is none.
func (l *Log) LastSeqFor(ctx context.Context, subject string) (uint64, error) {
	if subject == ">" {
		return l.LastSeq(ctx)
	}
	raw, err := l.rstream.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return 0, nil
		}
		return 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return raw.Sequence, nil
}

// LastSeq is the position of the newest event in the log (0 when empty).
func (l *Log) LastSeq(ctx context.Context) (uint64, error) {
	info, err := l.rstream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return info.State.LastSeq, nil
}

// Cursor renders a log position as the opaque cursor clients see.
func Cursor(seq uint64) string { return strconv.FormatUint(seq, 10) }

// ParseCursor reads a cursor back into a log position.
func ParseCursor(c string) (uint64, error) {
	seq, err := strconv.ParseUint(c, 10, 64)
	if err != nil || seq == 0 {
		return 0, fmt.Errorf("cursor %q is not one this server issued", c)
	}
	return seq, nil
}

// At reads the event stored at seq, through the client-read connection.
// ErrGone when the log no longer holds it (retention, or never stored).
func (l *Log) At(ctx context.Context, seq uint64) (Stored, error) {
	raw, err := l.msgGet(ctx, l.reads, msgGetRequest{Seq: seq}, false)
	if err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return Stored{}, ErrGone
		}
		return Stored{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if !strings.HasPrefix(raw.Subject, subjectPrefix+".") {
		return Stored{}, ErrGone
	}
	return Stored{Seq: raw.Sequence, Raw: raw.Data, Trace: traceOf(raw.Header), lazy: &lazyEvent{}}, nil
}

// ErrGone says the log holds no event at a position.
var ErrGone = errors.New("eventlog: no event at that position (aged out of the log, or never stored)")

// JetStream is the log's JetStream context on its client-read connection,
// for the resources of outbound delivery, which live beside the log and
// are replicated like it.
func (l *Log) JetStream() jetstream.JetStream { return l.rjs }

// Replicas is how many copies of the log a cluster keeps (1 embedded).
func (l *Log) Replicas() int { return l.cfg.Replicas }

// Bucket is the subject token that narrows a lookup by event id.
func Bucket(id string) string { return bucket(id) }

// natsLogger passes the embedded server's warnings and errors to the
// service's log, marked as its own; its notices, debug and trace lines
// are left out.
type natsLogger struct {
	l      *slog.Logger
	faults *storeWatch // told of every error line
}

func (n natsLogger) Noticef(string, ...any) {}
func (n natsLogger) Debugf(string, ...any)  {}
func (n natsLogger) Tracef(string, ...any)  {}
func (n natsLogger) Warnf(format string, v ...any) {
	n.l.Warn("embedded NATS server: " + fmt.Sprintf(format, v...))
}
func (n natsLogger) Errorf(format string, v ...any) {
	line := fmt.Sprintf(format, v...)
	n.faults.note(line, time.Now())
	n.l.Error("embedded NATS server: " + line)
}
func (n natsLogger) Fatalf(format string, v ...any) {
	n.l.Error("embedded NATS server (fatal): " + fmt.Sprintf(format, v...))
}
