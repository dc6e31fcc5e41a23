package eventlog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
)

// Shared sync: concurrent writes share one fsync (fsync: always on the
// embedded server, Linux).
//
// The embedded server with SyncAlways syncs the disk after every message
// it stores, one after another in the stream's store loop, so ingest runs
// at one event per sync. Atomic batches share a sync but stage their
// messages in a file store of their own, at about seven syncs a batch
// (see groupcommit.go). With a shared sync instead, the server runs
// without SyncAlways: it still writes each message to its block file
// (pwrite, in place) before it acknowledges it, so an acknowledged
// message is in the kernel's page cache and survives a process crash.
// Each write that must survive an OS crash too then calls Log.Sync (an
// append: syncEvents), which waits for a sync that began after the call:
// an fdatasync(2) of the last block of each stream whose writes wait in
// that round (every tracked stream for Sync, the events' for an append),
// or, when one of those stores has changed
// shape since (a new block, a compaction, a purge), one syncfs(2) of the
// data directory's file system, which covers every stream's blocks, the
// files and directories created since, and the server's metadata (see
// synctail.go). While one sync runs, the next callers gather, so the
// busier the log the more writes share a sync, and a lone write costs one
// sync as before.
//
// What calls Sync: appends (the 2xx to a vendor), quarantine writes,
// endpoint changes, dead letters and redrive requests. Delivery attempt
// records, checkpoints and leases do not wait: they reach the disk with
// the next round that falls back to syncfs or within the server's
// sync_interval, and after an OS crash a delivery may repeat (with the
// same webhook-id). So does a write to a tracked stream that did not
// wait, until a Sync covers that stream.

// syncer runs the shared syncs of one data directory.
type syncer struct {
	dir   *os.File // the data directory, for syncfs
	tails *streamTails
	wake  chan struct{}
	done  chan struct{}

	mu     sync.Mutex
	next   *syncRound // the round that callers now join (nil: none yet)
	closed bool

	syncs, waits atomic.Uint64 // syncs done, Sync calls served
	// sync writes to disk what was written before it began to the streams
	// a round needs (tails.sync); tests wrap it.
	sync func(r *syncRound) error
}

// syncRound is one sync and the callers waiting for it.
type syncRound struct {
	done chan struct{}
	err  error
	// all says a caller needs every tracked stream synced; else streams
	// are the ones its callers wrote to. An append waits for the events'
	// stream alone, so a round of appends looks at one block instead of
	// stat-ing every tracked stream's files (which cost more CPU than the
	// fdatasync itself).
	all     bool
	streams []string
}

// needs says whether the round must sync stream.
func (r *syncRound) needs(stream string) bool {
	return r.all || slices.Contains(r.streams, stream)
}

// newSyncer opens the embedded server's data dir for syncing the given
// streams; it fails where the platform has no syncfs.
func newSyncer(dir string, streams ...string) (*syncer, error) {
	if !canSyncFS {
		return nil, errNoSyncFS
	}
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("eventlog: shared sync: %w", err)
	}
	s := &syncer{dir: f, tails: newStreamTails(dir), wake: make(chan struct{}, 1), done: make(chan struct{})}
	s.tails.add(streams...)
	s.sync = func(r *syncRound) error { return s.tails.sync(r.needs, func() error { return syncFS(f) }) }
	go s.loop()
	return s, nil
}

// wait returns once a sync that began after the call has ended, with its
// error, or when ctx ends. The sync covers stream, or every tracked stream
// when stream is "".
func (s *syncer) wait(ctx context.Context, stream string) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("%w: closing", ErrUnavailable)
	}
	r := s.next
	if r == nil {
		r = &syncRound{done: make(chan struct{})}
		s.next = r
	}
	switch {
	case stream == "":
		r.all = true
	case !r.needs(stream):
		r.streams = append(r.streams, stream)
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
	s.mu.Unlock()
	s.waits.Add(1)
	select {
	case <-r.done:
		if r.err != nil {
			return fmt.Errorf("%w: sync: %v", ErrUnavailable, r.err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
	}
}

// loop runs one sync per wake-up for the round gathered so far; callers
// that come while it runs join the round after it.
func (s *syncer) loop() {
	defer close(s.done)
	for range s.wake {
		s.mu.Lock()
		r := s.next
		s.next = nil
		s.mu.Unlock()
		if r == nil {
			continue
		}
		r.err = s.sync(r)
		s.syncs.Add(1)
		close(r.done)
	}
	// Closed: fail whoever is still waiting.
	s.mu.Lock()
	r := s.next
	s.next = nil
	s.mu.Unlock()
	if r != nil {
		r.err = errClosing
		close(r.done)
	}
}

var (
	errClosing  = errors.New("closing")
	errNoSyncFS = errors.New("eventlog: shared sync needs syncfs(2) (Linux)")
)

// close stops the loop once its sync in flight has ended; later waits fail.
func (s *syncer) close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.wake)
	}
	s.mu.Unlock()
	<-s.done
	s.tails.close()
	_ = s.dir.Close()
}

// Sync returns once everything written to the log before the call is on
// disk, where writes share syncs (fsync: always on the embedded server;
// see syncer). Elsewhere it returns at once: the server synced each write
// as it stored it, or fsync: always was not asked for.
func (l *Log) Sync(ctx context.Context) error {
	if l.syncer == nil {
		return nil
	}
	return l.syncer.wait(ctx, "")
}

// syncEvents is Sync for a write to the events' stream alone (an append).
func (l *Log) syncEvents(ctx context.Context) error {
	if l.syncer == nil {
		return nil
	}
	return l.syncer.wait(ctx, l.cfg.Stream)
}

// SyncStreams makes Sync cover writes to these streams of the log's
// server too (the events and the quarantine bucket are covered from the
// start). Without shared syncs it does nothing.
func (l *Log) SyncStreams(streams ...string) {
	if l.syncer != nil {
		l.syncer.tails.add(streams...)
	}
}
