package eventlog

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookstream/hookstream/service/eventlog/idindex"
)

// Dedup has two layers, so that remembering ids for hours costs disk and
// not memory:
//
//   - The id index (package idindex) maps every event id of the last
//     DedupWindow to its log position, in files under the data dir. One
//     reader per process (the indexer) fills it from the log itself, so
//     every replica learns the ids that any replica appended.
//   - JetStream's own Nats-Msg-Id dedup, kept to a short guard window,
//     catches what the index cannot have seen yet: two copies of a
//     delivery appended at the same moment, on this replica or another.
//
// Append answers a duplicate from the index (after reading the original at
// its position to confirm it), and otherwise publishes with Nats-Msg-Id.
// The guard is sound while the index is less than half a guard window
// behind the log; when it falls further behind, Append fails with
// ErrUnavailable (503, the vendor retries) rather than risk a double.

// indexer keeps the id index complete up to a recent point of the log.
type indexer struct {
	l     *Log
	idx   *idindex.Index
	guard time.Duration
	// logID identifies the stream incarnation the checkpoint belongs to.
	logID string

	mu      sync.Mutex
	indexed uint64    // every event up to this position is in the index
	fresh   time.Time // at this time the index held the whole log
	probeAt time.Time // a freshness probe: the log's end at probeAt...
	probeTo uint64    // ...was probeTo
	err     error     // why the indexer is not running, if it is not
	// restart ends the current read, when the watchdog finds it stuck.
	restart context.CancelFunc
}

// indexTick is how often the indexer expires segments and checks itself;
// a read that has not reached the log's end after stuckAfter (or a quarter
// guard window, if longer) is restarted. Every commitEvery it fsyncs the
// index and records its checkpoint: a process kill loses nothing (the
// writes are in the page cache) but replays up to that much of the log at
// the next start, and rarer syncs let the kernel coalesce the random
// writes of a hash table into fewer page writes.
const (
	indexTick   = time.Second
	stuckAfter  = 5 * time.Second
	commitEvery = 10 * time.Second
)

// openIndex opens the index, replays what it misses from the log, and
// starts the indexer. It returns once the index holds every event that
// was in the log when it was called.
func (l *Log) openIndex(ctx context.Context) error {
	dir := l.cfg.IndexDir
	if dir == "" {
		dir = filepath.Join(l.cfg.DataDir, "idindex", l.cfg.Stream)
	}
	idx, err := idindex.Open(dir, idindex.Options{Window: l.cfg.DedupWindow})
	if err != nil {
		return fmt.Errorf("eventlog: dedup index: %w", err)
	}
	info, err := l.stream.Info(ctx)
	if err != nil {
		idx.Close()
		return fmt.Errorf("eventlog: stream %s: %w", l.cfg.Stream, err)
	}
	ix := &indexer{l: l, idx: idx, guard: l.cfg.GuardWindow,
		logID: l.cfg.Stream + "@" + info.Created.UTC().Format(time.RFC3339Nano)}
	cp, ok, err := idx.ReadCheckpoint()
	if err != nil {
		idx.Close()
		return fmt.Errorf("eventlog: dedup index: %w", err)
	}
	start := Start{Time: time.Now().Add(-l.cfg.DedupWindow)}
	switch {
	case ok && cp.Log == ix.logID && cp.Seq <= info.State.LastSeq && time.Since(cp.At) < l.cfg.DedupWindow:
		ix.indexed = cp.Seq
		start = Start{AfterSeq: cp.Seq}
	case ok && cp.Log == ix.logID && cp.Seq <= info.State.LastSeq:
		// Stopped for longer than the window: everything it holds has
		// expired, and the log since then is read by time instead.
		l.log.Info("dedup index is older than the dedup window; starting it afresh", "index_dir", dir)
		if err := idx.Reset(); err != nil {
			idx.Close()
			return fmt.Errorf("eventlog: dedup index: %w", err)
		}
	case ok || idx.Stats().Segments > 0:
		l.log.Warn("dedup index does not match the log (new stream, or index from elsewhere); rebuilding it from the log",
			"index_dir", dir)
		fallthrough
	default:
		if err := idx.Reset(); err != nil {
			idx.Close()
			return fmt.Errorf("eventlog: dedup index: %w", err)
		}
		ix.indexed = 0
	}
	target := info.State.LastSeq
	if ix.indexed >= target {
		ix.fresh = time.Now()
		start = Start{AfterSeq: target}
	}
	l.index = ix
	already := ix.indexed >= target
	caughtUp := make(chan struct{})
	var once sync.Once
	runCtx, cancel := context.WithCancel(context.Background())
	l.stopIndex = cancel
	l.indexDone = make(chan struct{})
	go func() {
		defer close(l.indexDone)
		ix.run(runCtx, start, target, func() { once.Do(func() { close(caughtUp) }) })
	}()
	if already {
		once.Do(func() { close(caughtUp) })
	} else {
		l.log.Info("dedup index: reading the log to catch up", "from_seq", start.AfterSeq+1, "to_seq", target, "rebuild", start.AfterSeq == 0)
	}
	began := time.Now()
	progress := time.NewTicker(5 * time.Second)
	defer progress.Stop()
	for {
		select {
		case <-caughtUp:
			st := idx.Stats()
			l.log.Info("dedup index ready", "indexed_seq", target, "entries", st.Entries, "segments", st.Segments,
				"took", time.Since(began).Round(time.Millisecond))
			return nil
		case <-progress.C:
			l.log.Info("dedup index: catching up", "indexed_seq", ix.position(), "to_seq", target)
		case <-ctx.Done():
			return fmt.Errorf("eventlog: dedup index did not catch up with the log (at %d of %d): %w", ix.position(), target, ctx.Err())
		}
	}
}

func (ix *indexer) position() uint64 {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return ix.indexed
}

// run reads the log into the index until ctx ends, restarting after
// failures from the last indexed position. caughtUp is called once the
// index reaches target.
func (ix *indexer) run(ctx context.Context, start Start, target uint64, caughtUp func()) {
	tickCtx, stopTicks := context.WithCancel(ctx)
	ticksDone := make(chan struct{})
	go func() { defer close(ticksDone); ix.ticks(tickCtx) }()
	defer func() {
		stopTicks()
		<-ticksDone
		if err := ix.commit(); err != nil { // a clean stop leaves nothing to replay
			ix.l.log.Error("dedup index checkpoint failed", "err", err)
		}
	}()
	for ctx.Err() == nil {
		readCtx, restart := context.WithCancel(ctx)
		ix.mu.Lock()
		ix.restart = restart
		ix.mu.Unlock()
		err := ix.read(readCtx, start, target, caughtUp)
		restart()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("the reader was behind the log without progress")
		}
		ix.mu.Lock()
		ix.err = err
		at := ix.indexed
		ix.mu.Unlock()
		ix.l.log.Warn("dedup indexer lost the log; restarting it", "indexed_seq", at, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		if at > 0 {
			start = Start{AfterSeq: at}
		}
	}
}

// read consumes headers only (the id is in Nats-Msg-Id) from start.
func (ix *indexer) read(ctx context.Context, start Start, target uint64, caughtUp func()) error {
	cfg := start.consumerConfig(nil)
	cfg.HeadersOnly = true
	cons, err := ix.l.js.OrderedConsumer(ctx, ix.l.cfg.Stream, cfg)
	if err != nil {
		return err
	}
	if cons.CachedInfo().NumPending == 0 {
		// Nothing after start: the index already holds every event that
		// matters up to the log's end (which is at least target).
		ix.mu.Lock()
		ix.indexed = max(ix.indexed, target)
		ix.fresh = time.Now()
		ix.mu.Unlock()
		caughtUp()
	}
	return consume(ctx, cons, 1024, func(msg jetstream.Msg) error {
		md, err := msg.Metadata()
		if err != nil {
			return err
		}
		seq := md.Sequence.Stream
		if id := msg.Headers().Get(jetstream.MsgIDHeader); id != "" {
			if err := ix.idx.Insert(idindex.KeyOf(id), seq, md.Timestamp); err != nil {
				return err
			}
		}
		now := time.Now()
		ix.mu.Lock()
		if seq > ix.indexed {
			ix.indexed = seq
		}
		if md.NumPending == 0 {
			ix.fresh = now // the server had nothing newer when it sent this
		}
		if ix.probeTo != 0 && ix.indexed >= ix.probeTo {
			ix.fresh, ix.probeTo = ix.probeAt, 0
		}
		ix.err = nil
		reached := ix.indexed >= target || md.NumPending == 0
		ix.mu.Unlock()
		if reached {
			caughtUp()
		}
		return nil
	})
}

// ticks commits the index, drops expired segments and probes freshness.
func (ix *indexer) ticks(ctx context.Context) {
	t := time.NewTicker(min(indexTick, ix.guard/4))
	defer t.Stop()
	committed, committedAt := ix.position(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if at := ix.position(); at != committed && time.Since(committedAt) >= commitEvery {
			if err := ix.commit(); err != nil {
				ix.l.log.Error("dedup index checkpoint failed", "err", err)
			} else {
				committed, committedAt = at, time.Now()
			}
		}
		if err := ix.idx.Expire(); err != nil {
			ix.l.log.Error("dedup index expiry failed", "err", err)
		}
		ix.probe(ctx)
	}
}

func (ix *indexer) commit() error {
	return ix.idx.Commit(idindex.Checkpoint{Log: ix.logID, Seq: ix.position(), At: time.Now().UTC()})
}

// probe asks the log for its end when the index has not been known fresh
// for a while (an idle log sends the indexer nothing to learn it from).
func (ix *indexer) probe(ctx context.Context) {
	ix.mu.Lock()
	need := ix.probeTo == 0 && time.Since(ix.fresh) > ix.guard/8
	if ix.probeTo != 0 && time.Since(ix.probeAt) > max(ix.guard/4, stuckAfter) {
		// A consumer on a cluster node that died can go quiet before the
		// client notices; start over from the last indexed position.
		ix.probeTo = 0
		if ix.restart != nil {
			ix.restart()
		}
	}
	ix.mu.Unlock()
	if !need {
		return
	}
	at := time.Now()
	pctx, cancel := context.WithTimeout(ctx, ix.guard/4)
	defer cancel()
	info, err := ix.l.stream.Info(pctx)
	if err != nil {
		return
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.indexed >= info.State.LastSeq {
		ix.fresh = at
	} else {
		ix.probeAt, ix.probeTo = at, info.State.LastSeq
	}
}

// errIndexBehind is why writes stop while the index lags the log.
var errIndexBehind = errors.New("dedup index is behind the log")

// current fails when the index may miss an event older than half the
// guard window.
func (ix *indexer) current() error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if lag := time.Since(ix.fresh); lag > ix.guard/2 {
		if ix.err != nil {
			return fmt.Errorf("%w (%s): %v", errIndexBehind, lag.Round(time.Second), ix.err)
		}
		return fmt.Errorf("%w (%s)", errIndexBehind, lag.Round(time.Second))
	}
	return nil
}

// lookup returns the stored event with this id, nil when the index does
// not know it. A hit is confirmed by reading the original, so a stale or
// damaged index can never turn a new event into a "duplicate".
func (l *Log) lookup(ctx context.Context, id string) (*jetstream.RawStreamMsg, error) {
	e, ok, err := l.index.idx.Lookup(idindex.KeyOf(id))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if !ok {
		return nil, nil
	}
	raw, err := l.stream.GetMsg(ctx, e.Seq)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	case raw.Header.Get(jetstream.MsgIDHeader) != id:
		return nil, nil
	}
	return raw, nil
}

// closeIndex stops the indexer, commits and closes the index.
func (l *Log) closeIndex() {
	if l.stopIndex != nil {
		l.stopIndex()
		<-l.indexDone
	}
	if l.index != nil {
		l.index.idx.Close()
	}
}

// IndexStatus describes the dedup index for metrics.
type IndexStatus struct {
	Entries  uint64
	Segments int
	// Bytes is the size of the index files (sparse: disk use is at most this).
	Bytes int64
	// Lag is how long ago the index was last known to hold the whole log.
	Lag time.Duration
}

// IndexStatus returns the dedup index's current figures.
func (l *Log) IndexStatus() IndexStatus {
	st := l.index.idx.Stats()
	l.index.mu.Lock()
	lag := time.Since(l.index.fresh)
	l.index.mu.Unlock()
	return IndexStatus{Entries: st.Entries, Segments: st.Segments, Bytes: st.Bytes, Lag: lag}
}
