package eventlog

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Recovering the embedded server's store after a failed write.
//
// When a message block cannot be written (ENOSPC from a disk another
// process filled, EIO, a file size limit), nats-server's file store keeps
// that error and returns it for every later write to the stream, until
// the stream is loaded again: room on the disk does not bring it back. The
// disk guard keeps our own writes from getting there, but not another
// process's, nor delivery's records, which the reserve is for. So the
// embedded server's error lines are watched for such a failure; once the
// disk guard sees room, JetStream is restarted in the process, which loads
// every stream from its files again (what a restart of hookstream did by
// hand). Writes during the restart fail as while the disk was full (503,
// the vendor retries); nothing acknowledged is lost, as a write whose
// store failed was never acknowledged.

const (
	// storeRecoverAfter is how long a failure stands before the first
	// recovery, so that a burst of failing writes ends first.
	storeRecoverAfter = 2 * time.Second
	// storeRecoverBackoff bounds the wait between failed recoveries.
	storeRecoverBackoff = time.Minute
)

// storeFault is a write the embedded store failed.
type storeFault struct {
	line string    // the server's error line
	at   time.Time // when it was noted
}

// storeWatch collects the embedded store's failed writes; safe for
// concurrent use.
type storeWatch struct {
	mu     sync.Mutex
	fault  *storeFault
	count  int         // failures since the last recovery
	latest *storeFault // the newest failure
}

// isStoreFault reports whether an error line of the embedded server says
// a store failed a write and now refuses further ones.
func isStoreFault(line string) bool {
	return strings.Contains(strings.ToLower(line), "critical write error")
}

// note records line if it says a store failed a write.
func (w *storeWatch) note(line string, now time.Time) {
	if w == nil || !isStoreFault(line) {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.count++
	w.latest = &storeFault{line: line, at: now}
	if w.fault == nil {
		w.fault = w.latest
	}
}

// current is the first failure since the last recovery, nil if none.
func (w *storeWatch) current() (f *storeFault, count int) {
	if w == nil {
		return nil, 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.fault, w.count
}

// recovered forgets the failures noted before cut, when the restart that
// cleared them began. One noted since (a stream reloaded and written to
// while the disk filled again) stays, as a fault of its own: the store it
// came from refuses writes again, and says so only once.
func (w *storeWatch) recovered(cut time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.latest != nil && !w.latest.at.Before(cut) {
		w.fault, w.count = w.latest, 1
		return
	}
	w.fault, w.count, w.latest = nil, 0, nil
}

// StoreFault says, while the embedded server's store refuses writes after
// a failed one, what failed and what happens next; "" otherwise.
func (l *Log) StoreFault() string {
	f, n := l.faults.current()
	if f == nil {
		return ""
	}
	return "the log's storage failed a write (" + f.line + "); " +
		plural(n, "failure") + " since " + f.at.UTC().Format(time.RFC3339) +
		"; JetStream is restarted in the process once the disk has room"
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// recoverStore restarts the embedded JetStream after a store failed a
// write, once the disk guard sees room, until ctx ends.
func (l *Log) recoverStore(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	// Restarts follow each other at growing intervals while writes keep
	// failing (a disk that fills again, a store that cannot be written at
	// all): from 5 s up to storeRecoverBackoff, and from the start again
	// once a restart has held that long.
	var wait time.Duration
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			f, n := l.faults.current()
			if f == nil || now.Sub(f.at) < storeRecoverAfter || now.Before(last.Add(wait)) {
				continue
			}
			if low := l.disk.short(); low != nil {
				continue // the disk guard has said so; room first
			}
			if now.Sub(last) > wait+storeRecoverBackoff {
				wait = 0
			}
			l.log.Warn("restarting the embedded JetStream: a store failed a write and refuses further ones until its streams are loaded again",
				"failures", n, "first_failure", f.line)
			cut := time.Now()
			err := l.restartJetStream()
			last, wait = time.Now(), min(max(2*wait, 5*time.Second), storeRecoverBackoff)
			if err != nil {
				l.log.Error("restarting the embedded JetStream failed; trying again", "err", err, "retry_in", wait)
				continue
			}
			l.faults.recovered(cut)
			if again, _ := l.faults.current(); again != nil {
				l.log.Error("JetStream restarted in the process, but a store failed a write again; trying again", "failure", again.line, "retry_in", wait)
				continue
			}
			l.log.Info("the log's storage takes writes again: JetStream restarted in the process", "took", last.Sub(now).Round(time.Millisecond))
		}
	}
}

// restartJetStream shuts the embedded JetStream down and starts it again
// with the options it started with: nats-server's reload path for a
// JetStream disabled at run time, which loads every stream from its files.
func (l *Log) restartJetStream() error {
	if err := l.ns.ShutdownJetStream(); err != nil {
		return fmt.Errorf("shutting JetStream down: %w", err)
	}
	if err := l.ns.ReloadOptions(embeddedOptions(l.cfg)); err != nil {
		return fmt.Errorf("starting JetStream: %w", err)
	}
	if !l.ns.JetStreamEnabled() {
		return errors.New("JetStream did not start again (the embedded server's log says why)")
	}
	return nil
}
