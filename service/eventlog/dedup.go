package eventlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookstream/hookstream/internal/idindex"
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
// The indexer is the process's one reader of the whole log: after the
// index holds an event it hands it to the log's Follower (the hub that
// feeds live Subscribe streams), so every event is read once per process.
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
	// While a probe is open, the reader last moved (to movedTo) at movedAt.
	movedAt time.Time
	movedTo uint64
	stuck   bool  // the watchdog restarted the reader
	err     error // why the indexer is not running, if it is not
	// restart ends the current read, when the watchdog finds it stuck or
	// the log was replaced (rebuild is then set).
	restart context.CancelFunc
	rebuild bool
	wake    chan struct{} // cuts the reader's back-off short for a rebuild
	resets  int           // how many times the index was reset while running
	checked time.Time     // last full check of the stream (see check)
	holes   uint64        // positions inside the log without a message, when last checked
	// The server's clock: serverTS was its time at local time serverAt.
	serverTS time.Time
	serverAt time.Time
	follower Follower
}

// Follower receives every event of the log, in order, from the process's
// one reader of the whole log, once the dedup index holds it.
type Follower interface {
	// Event is called on the reader's goroutine and must not block.
	Event(Stored)
	// Lost says the reader stopped or starts over: the log failed, the
	// reader was stuck, or (ErrReplaced) the stream was deleted and created
	// again. Events resume after the last one passed on; after
	// ErrReplaced, from the new stream's recent events.
	Lost(error)
}

// ErrReplaced is what a Follower is told when the stream was replaced.
var ErrReplaced = errors.New("the event stream was deleted and created again")

// Follow makes f the log's follower and returns the position of the last
// event the reader has passed on: f receives every event after it. A log
// has one follower; Follow fails if another is registered.
func (l *Log) Follow(f Follower) (uint64, error) {
	l.index.mu.Lock()
	defer l.index.mu.Unlock()
	if l.index.follower != nil && l.index.follower != f {
		return 0, errors.New("eventlog: the log already has a follower")
	}
	l.index.follower = f
	return l.index.indexed, nil
}

// Unfollow removes f, if it is the follower.
func (l *Log) Unfollow(f Follower) {
	l.index.mu.Lock()
	defer l.index.mu.Unlock()
	if l.index.follower == f {
		l.index.follower = nil
	}
}

// lost tells the follower, if any, that the reader starts over.
func (ix *indexer) lost(err error) {
	ix.mu.Lock()
	f := ix.follower
	ix.mu.Unlock()
	if f != nil {
		f.Lost(err)
	}
}

// logID identifies a stream incarnation: a stream deleted and created
// again starts its positions over.
func logID(info *jetstream.StreamInfo) string {
	return info.Config.Name + "@" + info.Created.UTC().Format(time.RFC3339Nano)
}

// observeServerTime records a time read from the server (a stream info's
// timestamp, a message's store time), so that windows are measured on the
// clock that stamps the events even if this host's clock is off.
func (ix *indexer) observeServerTime(t time.Time) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.observeServerTimeLocked(t, time.Now())
}

// observeServerTimeLocked is observeServerTime with ix.mu held; now is
// the local time of the observation.
func (ix *indexer) observeServerTimeLocked(t, now time.Time) {
	if t.After(ix.serverTS) {
		ix.serverTS, ix.serverAt = t, now
	}
}

// serverNow estimates the server's current time (this host's clock until
// the server has told its own).
func (ix *indexer) serverNow() time.Time {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.serverTS.IsZero() {
		return time.Now()
	}
	return ix.serverTS.Add(time.Since(ix.serverAt))
}

// indexTick is how often the indexer expires segments and checks itself:
// when the index has not been known to hold the whole log for probeAfter
// (or an eighth of the guard, if shorter) it asks the log for its end, and
// a read that is behind that end and has not moved for stuckAfter is
// restarted (a consumer on a cluster node that died can go quiet before
// the client notices; live subscribers wait on it too). Every commitEvery it fsyncs the
// index and records its checkpoint: a process kill loses nothing (the
// writes are in the page cache) but replays up to that much of the log at
// the next start, and rarer syncs let the kernel coalesce the random
// writes of a hash table into fewer page writes.
const (
	indexTick   = time.Second
	probeAfter  = 2 * time.Second
	stuckAfter  = 3 * time.Second
	commitEvery = 10 * time.Second
	checkEvery  = 5 * time.Second
)

// openIndex opens the index, replays what it misses from the log, and
// starts the indexer. It returns once the index holds every event that
// was in the log when it was called.
func (l *Log) openIndex(ctx context.Context) error {
	dir := l.cfg.IndexDir
	if dir == "" {
		dir = filepath.Join(l.cfg.DataDir, "idindex", l.cfg.Stream)
	}
	info := l.setupInfo
	ix := &indexer{l: l, guard: min(l.cfg.GuardWindow, info.Config.Duplicates), logID: logID(info), wake: make(chan struct{}, 1)}
	ix.observeServerTime(info.TimeStamp)
	opts := idindex.Options{Window: l.cfg.DedupWindow, Now: ix.serverNow}
	idx, err := idindex.Open(dir, opts)
	if errors.Is(err, idindex.ErrCorrupt) {
		// A torn file (an OS crash while a segment was being created) or
		// a stranger: the log has everything to rebuild from.
		l.log.Warn("dedup index is damaged; rebuilding it from the log", "index_dir", dir, "err", err)
		if err = idindex.Wipe(dir); err == nil {
			idx, err = idindex.Open(dir, opts)
		}
	}
	if err != nil {
		return fmt.Errorf("eventlog: dedup index: %w", err)
	}
	ix.idx = idx
	cp, ok, err := idx.ReadCheckpoint()
	if err != nil {
		idx.Close()
		return fmt.Errorf("eventlog: dedup index: %w", err)
	}
	if ok && cp.Log == ix.logID {
		if info, err = l.checkDamage(ctx, info, cp); err != nil {
			idx.Close()
			return err
		}
	}
	ix.holes = holesOf(info.State)
	// Resume after the checkpoint when it belongs to this stream and is
	// recent; otherwise start afresh and read the last window by time.
	start := Start{Time: ix.serverNow().Add(-l.cfg.DedupWindow)}
	matches := ok && cp.Log == ix.logID && cp.Seq <= info.State.LastSeq
	resume := matches && time.Since(cp.At) < l.cfg.DedupWindow
	damaged := false
	if resume {
		// The files may look whole and still have lost entries (zeroed or
		// overwritten slots keep a valid header): check a sample against
		// the log, and rebuild when one is missing.
		n, err := l.verifyIndex(ctx, idx, cp, info.State.FirstSeq, ix.serverNow().Add(-l.cfg.DedupWindow))
		switch {
		case errors.Is(err, ErrUnavailable):
			idx.Close()
			return fmt.Errorf("eventlog: dedup index: %w", err)
		case err != nil:
			l.log.Warn("dedup index lost entries the log still has; rebuilding it from the log", "index_dir", dir,
				"checked", n, "err", err)
			resume, damaged = false, true
		}
	}
	switch {
	case resume:
		ix.indexed = cp.Seq
		start = Start{AfterSeq: cp.Seq}
	case damaged:
		// verifyIndex said why.
	case matches:
		l.log.Info("dedup index is older than the dedup window; starting it afresh", "index_dir", dir)
	case ok || idx.Stats().Segments > 0:
		l.log.Warn("dedup index does not match the log (new stream, or index from elsewhere); rebuilding it from the log",
			"index_dir", dir)
	}
	if !resume {
		if err := idx.Reset(); err != nil {
			idx.Close()
			return fmt.Errorf("eventlog: dedup index: %w", err)
		}
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

// coverage is what the index holds for certain: every event stored up to
// position indexed and at or after since. since is the dedup window back
// from now, less a margin: the index keeps store times to the second, and
// its expiry reads the clock at other moments. The claim holds until the
// index is reset (the stream was replaced), which changes resets.
func (ix *indexer) coverage() (indexed uint64, since time.Time, resets int) {
	w := ix.l.cfg.DedupWindow
	ix.mu.Lock()
	indexed, resets = ix.indexed, ix.resets
	ix.mu.Unlock()
	return indexed, ix.serverNow().Add(-w + time.Second + w/64), resets
}

// resetCount is how many times the index was reset while running.
func (ix *indexer) resetCount() int {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return ix.resets
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
		ix.mu.Lock()
		ix.fresh, ix.err = time.Time{}, errors.New("the indexer has stopped")
		ix.mu.Unlock()
		ix.lost(errors.New("the event log is closing"))
	}()
	for ctx.Err() == nil {
		ix.mu.Lock()
		rebuild := ix.rebuild
		ix.rebuild = false
		ix.mu.Unlock()
		if rebuild {
			// The stream was replaced: its positions start over. The
			// position and the count go first, so that no Get takes the
			// emptied index for one that holds the old position (see
			// coverage).
			ix.mu.Lock()
			ix.indexed, ix.fresh = 0, time.Time{}
			ix.resets++
			ix.mu.Unlock()
			if err := ix.idx.Reset(); err != nil {
				ix.l.log.Error("dedup index reset failed", "err", err)
			}
			ix.lost(ErrReplaced)
			start, target = Start{Time: ix.serverNow().Add(-ix.l.cfg.DedupWindow)}, 0
		}
		readCtx, restart := context.WithCancel(ctx)
		ix.mu.Lock()
		ix.restart = restart
		ix.mu.Unlock()
		err := ix.read(readCtx, start, target, caughtUp)
		restart()
		if ctx.Err() != nil {
			return
		}
		ix.mu.Lock()
		rebuild, stuck, at := ix.rebuild, ix.stuck, ix.indexed
		ix.stuck = false
		ix.mu.Unlock()
		if rebuild {
			continue
		}
		if err == nil && stuck {
			// Resume at once from the last indexed event: the follower
			// misses nothing and need not know.
			ix.l.log.Warn("log reader was behind the log without progress; restarting it", "indexed_seq", at)
			if at > 0 {
				start = Start{AfterSeq: at}
			}
			continue
		}
		if err == nil {
			err = errors.New("the reader stopped")
		}
		ix.mu.Lock()
		ix.err = err
		ix.mu.Unlock()
		ix.l.log.Warn("log reader lost the log; restarting it", "indexed_seq", at, "err", err)
		ix.lost(err)
		select {
		case <-ctx.Done():
			return
		case <-ix.wake:
		case <-time.After(time.Second):
		}
		if at > 0 {
			start = Start{AfterSeq: at}
		}
	}
}

// read consumes the log from start (the id is in Nats-Msg-Id), feeding
// the index and then the follower.
func (ix *indexer) read(ctx context.Context, start Start, target uint64, caughtUp func()) error {
	cons, err := ix.l.feedJS.OrderedConsumer(ctx, ix.l.cfg.Stream, start.consumerConfig(nil))
	if err != nil {
		return err
	}
	if cons.CachedInfo().NumPending == 0 {
		// Nothing after start: the index already holds every event that
		// matters up to the log's end (at least target; further if events
		// were deleted before this reader saw them, which would otherwise
		// leave it "behind" a position it can never reach).
		end := target
		if info, err := ix.l.stream.Info(ctx); err == nil {
			end = max(end, info.State.LastSeq)
		}
		ix.mu.Lock()
		ix.indexed = max(ix.indexed, end)
		ix.fresh = time.Now()
		ix.mu.Unlock()
		caughtUp()
	}
	return consume(ctx, cons, ix.l.feedBytes(), func(msg jetstream.Msg) error {
		md, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("eventlog: message metadata: %w", err)
		}
		seq := md.Sequence.Stream
		if id := msg.Headers().Get(jetstream.MsgIDHeader); id != "" {
			if err := ix.idx.Insert(idindex.KeyOf(id), seq, md.Timestamp); err != nil {
				return err
			}
		}
		now := time.Now()
		ix.mu.Lock()
		ix.observeServerTimeLocked(md.Timestamp, now)
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
		f := ix.follower
		ix.mu.Unlock()
		if reached {
			caughtUp()
		}
		if f != nil {
			f.Event(stored(msg, md))
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
		ix.check(ctx)
	}
}

func (ix *indexer) commit() error {
	ix.mu.Lock()
	cp := idindex.Checkpoint{Log: ix.logID, Seq: ix.indexed, At: time.Now().UTC(), Holes: ix.holes}
	ix.mu.Unlock()
	return ix.idx.Commit(cp)
}

// check asks the log for its state: when the index has not been known
// fresh for a while (an idle log sends the indexer nothing to learn it
// from), and every checkEvery anyway, to follow the stream's dedup window
// (another replica may have set it) and to notice a stream that was
// deleted and created again.
func (ix *indexer) check(ctx context.Context) {
	ix.mu.Lock()
	if ix.probeTo != 0 {
		// Behind the log: a reader that still moves is only slow, one that
		// has not moved for stuckAfter is stuck (a consumer on a cluster
		// node that died can go quiet before the client notices), and is
		// started over from the last indexed position.
		switch {
		case ix.indexed != ix.movedTo:
			ix.movedAt, ix.movedTo = time.Now(), ix.indexed
		case time.Since(ix.movedAt) > stuckAfter && ix.restart != nil:
			ix.probeTo, ix.stuck = 0, true
			ix.restart()
		}
	}
	need := ix.probeTo == 0 && time.Since(ix.fresh) > min(ix.guard/8, probeAfter) || time.Since(ix.checked) >= checkEvery
	timeout := ix.guard / 4
	// Read before asking: the log's end can only be past this position,
	// while the indexer may pass the answer's end before it arrives.
	before, resets := ix.indexed, ix.resets
	ix.mu.Unlock()
	if !need {
		return
	}
	at := time.Now()
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	info, err := ix.l.stream.Info(pctx)
	if err != nil {
		return
	}
	ix.observeServerTime(info.TimeStamp)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.checked = at
	if id := logID(info); id == ix.logID {
		ix.holes = holesOf(info.State)
	}
	if d := info.Config.Duplicates; d > 0 {
		ix.guard = min(ix.l.cfg.GuardWindow, d)
	}
	if ix.rebuild {
		return // already noticed; the reader starts over
	}
	if id := logID(info); id != ix.logID || info.State.LastSeq < before && resets == ix.resets {
		ix.l.log.Warn("the event stream was replaced; rebuilding the dedup index", "was", ix.logID, "now", id)
		ix.logID, ix.rebuild, ix.fresh, ix.probeTo = id, true, time.Time{}, 0
		if ix.restart != nil {
			ix.restart()
		}
		select {
		case ix.wake <- struct{}{}:
		default:
		}
		return
	}
	if ix.probeTo != 0 {
		return
	}
	if ix.indexed >= info.State.LastSeq {
		ix.fresh = at
	} else {
		ix.probeAt, ix.probeTo = at, info.State.LastSeq
		ix.movedAt, ix.movedTo = at, ix.indexed
	}
}

// errIndexBehind is why writes stop while the index lags the log.
var errIndexBehind = errors.New("dedup index is behind the log")

// current fails when the index may miss an event older than half the
// guard window. Otherwise it returns the deadline by which a publish must
// land for JetStream's guard to still cover any copy the index has not
// seen: such a copy was stored after the index was last fresh, and the
// guard remembers it for one guard window.
func (ix *indexer) current() (time.Time, error) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if lag := time.Since(ix.fresh); lag > ix.guard/2 {
		if ix.err != nil {
			return time.Time{}, fmt.Errorf("%w (%s): %v", errIndexBehind, lag.Round(time.Second), ix.err)
		}
		return time.Time{}, fmt.Errorf("%w (%s)", errIndexBehind, lag.Round(time.Second))
	}
	return ix.fresh.Add(ix.guard - ix.guard/8), nil
}

// lookup returns the stored event with this id, nil when the index does
// not know it. A hit is confirmed by reading the original, so a stale or
// damaged index can never turn a new event into a "duplicate". On a
// cluster a direct get may be answered by a follower that is behind, so a
// miss there is asked again of the stream leader. reads, when not nil,
// counts the log reads made.
func (l *Log) lookup(ctx context.Context, id string, reads *int) (*jetstream.RawStreamMsg, error) {
	e, ok, err := l.index.idx.Lookup(idindex.KeyOf(id))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if !ok {
		return nil, nil
	}
	l.msgReads.Add(1)
	if reads != nil {
		*reads++
	}
	raw, err := l.stream.GetMsg(ctx, e.Seq)
	if err == nil && raw.Header.Get(jetstream.MsgIDHeader) == id {
		return raw, nil
	}
	if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if l.ns != nil { // embedded: one server, no followers
		return nil, nil
	}
	if reads != nil {
		*reads++
	}
	raw, err = l.msgGet(ctx, msgGetRequest{Seq: e.Seq}, true)
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

// msgGetRequest is the JetStream API's message get request: a position
// (Seq, or the first message stored at or after StartTime), optionally
// the first message on NextFor from there; or the last message on
// LastFor.
type msgGetRequest struct {
	Seq       uint64     `json:"seq,omitempty"`
	StartTime *time.Time `json:"start_time,omitempty"`
	NextFor   string     `json:"next_by_subj,omitempty"`
	LastFor   string     `json:"last_by_subj,omitempty"`
}

// msgGet reads one message on the ingest connection (the dedup check's
// confirming read): see msgGetOn.
func (l *Log) msgGet(ctx context.Context, req msgGetRequest, leader bool) (*jetstream.RawStreamMsg, error) {
	return l.msgGetOn(ctx, l.nc, req, leader)
}

// msgGetOn reads one message over nc: with leader through the stream
// leader (the JetStream API's message get), otherwise with a direct get,
// which any replica may answer. A request that matches nothing gets
// jetstream.ErrMsgNotFound.
func (l *Log) msgGetOn(ctx context.Context, nc *nats.Conn, req msgGetRequest, leader bool) (*jetstream.RawStreamMsg, error) {
	l.msgReads.Add(1)
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if !leader {
		resp, err := nc.RequestWithContext(ctx, "$JS.API.DIRECT.GET."+l.cfg.Stream, body)
		if err != nil {
			return nil, err
		}
		return directMsg(resp)
	}
	resp, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+l.cfg.Stream, body)
	if err != nil {
		return nil, err
	}
	var out struct {
		Message *struct {
			Subject string    `json:"subject"`
			Seq     uint64    `json:"seq"`
			Header  []byte    `json:"hdrs"`
			Data    []byte    `json:"data"`
			Time    time.Time `json:"time"`
		} `json:"message"`
		Error *struct {
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &out); err != nil {
		return nil, fmt.Errorf("message get: %w", err)
	}
	switch {
	case out.Error != nil && out.Error.ErrCode == int(jetstream.JSErrCodeMessageNotFound):
		return nil, jetstream.ErrMsgNotFound
	case out.Error != nil:
		return nil, fmt.Errorf("message get: %s", out.Error.Description)
	case out.Message == nil:
		return nil, errors.New("message get: empty answer")
	}
	raw := &jetstream.RawStreamMsg{Subject: out.Message.Subject, Sequence: out.Message.Seq, Data: out.Message.Data, Time: out.Message.Time}
	if len(out.Message.Header) > 0 {
		if raw.Header, err = nats.DecodeHeadersMsg(out.Message.Header); err != nil {
			return nil, fmt.Errorf("message get: %w", err)
		}
	}
	return raw, nil
}

// directMsg reads a direct get's answer: the stored message, with its
// position, subject and store time in headers, or a status such as 404.
func directMsg(m *nats.Msg) (*jetstream.RawStreamMsg, error) {
	if len(m.Data) == 0 {
		switch status := m.Header.Get("Status"); status {
		case "":
		case "404":
			return nil, jetstream.ErrMsgNotFound
		default:
			return nil, fmt.Errorf("direct get: %s %s", status, m.Header.Get("Description"))
		}
	}
	seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("direct get: position: %w", err)
	}
	at, err := time.Parse(time.RFC3339Nano, m.Header.Get(jetstream.TimeStampHeaer))
	if err != nil {
		return nil, fmt.Errorf("direct get: store time: %w", err)
	}
	return &jetstream.RawStreamMsg{Subject: m.Header.Get(jetstream.SubjectHeader), Sequence: seq, Header: m.Header, Data: m.Data, Time: at}, nil
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
	// LostEvents is how many acknowledged events the log was found to
	// have lost when it was opened (see Damage).
	LostEvents uint64
}

// IndexStatus returns the dedup index's current figures.
func (l *Log) IndexStatus() IndexStatus {
	st := l.index.idx.Stats()
	l.index.mu.Lock()
	lag := time.Since(l.index.fresh)
	l.index.mu.Unlock()
	var lost uint64
	if d := l.damage; d != nil {
		lost = d.Lost()
	}
	return IndexStatus{Entries: st.Entries, Segments: st.Segments, Bytes: st.Bytes, Lag: lag, LostEvents: lost}
}
