package eventlog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

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
		ix.incarnation.Store(&id)
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
