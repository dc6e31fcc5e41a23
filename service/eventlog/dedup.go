package eventlog

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

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
	// logID identifies the stream incarnation the checkpoint belongs to;
	// incarnation holds it too, for Log.Incarnation to read without the
	// lock.
	logID       string
	incarnation atomic.Pointer[string]

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

// indexDir is where the dedup index lives.
func (l *Log) indexDir() string {
	if l.cfg.IndexDir != "" {
		return l.cfg.IndexDir
	}
	return filepath.Join(l.cfg.DataDir, "idindex", l.cfg.Stream)
}

// openIndex opens the index, replays what it misses from the log, and
// starts the indexer. It returns once the index holds every event that
// was in the log when it was called.
func (l *Log) openIndex(ctx context.Context) error {
	dir := l.indexDir()
	info := l.setupInfo
	ix := &indexer{l: l, guard: min(l.cfg.GuardWindow, info.Config.Duplicates), logID: logID(info), wake: make(chan struct{}, 1)}
	id := ix.logID // a copy: the field changes under ix.mu
	ix.incarnation.Store(&id)
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
	// The log's end is read before the consumer exists: whatever is at or
	// below it was stored by then, so a consumer with nothing pending
	// proves those positions hold nothing after start. (Read after, an
	// event appended meanwhile would be claimed indexed before it is.)
	end := target
	if info, err := ix.l.stream.Info(ctx); err == nil {
		end = max(end, info.State.LastSeq)
	}
	cons, err := ix.l.feedJS.OrderedConsumer(ctx, ix.l.cfg.Stream, start.consumerConfig(nil))
	if err != nil {
		return err
	}
	if cons.CachedInfo().NumPending == 0 {
		// Nothing after start: the index already holds every event that
		// matters up to the log's end (at least target; further if events
		// were deleted before this reader saw them, which would otherwise
		// leave it "behind" a position it can never reach).
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
	// A checkpoint that cannot be written (a full disk) is tried again at
	// every tick: said when it starts failing, then once a minute with the
	// count, and when it is written again.
	var failed int
	var saidAt time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if at := ix.position(); at != committed && time.Since(committedAt) >= commitEvery {
			if err := ix.commit(); err != nil {
				if failed++; failed == 1 || time.Since(saidAt) >= time.Minute {
					ix.l.log.Error("dedup index checkpoint failed; trying again every tick (a restart meanwhile re-reads the log from the last checkpoint)",
						"err", err, "failures", failed)
					saidAt = time.Now()
				}
			} else {
				if failed > 0 {
					ix.l.log.Info("dedup index checkpoint written again", "failures", failed)
					failed = 0
				}
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
