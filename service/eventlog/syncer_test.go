package eventlog

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// gatedSyncs makes each sync of l's syncer wait at a gate: syncs reports
// each sync as it begins, and the test lets it run the real syncfs (and
// return fail's error, if set) by sending on release.
type gatedSyncs struct {
	began   chan struct{}
	release chan error
}

func gateSyncs(t *testing.T, l *Log) *gatedSyncs {
	t.Helper()
	if l.syncer == nil {
		t.Skip("no shared sync on this platform")
	}
	g := &gatedSyncs{began: make(chan struct{}, 16), release: make(chan error)}
	syncFS := l.syncer.sync
	l.syncer.sync = func(r *syncRound) error {
		g.began <- struct{}{}
		if err := <-g.release; err != nil {
			return err
		}
		return syncFS(r)
	}
	return g
}

// waitBegan waits for the next sync to begin.
func (g *gatedSyncs) waitBegan(t *testing.T) {
	t.Helper()
	select {
	case <-g.began:
	case <-time.After(10 * time.Second):
		t.Fatal("no sync began")
	}
}

// waitWaiting waits until n Sync calls in all have registered.
func waitWaiting(t *testing.T, l *Log, n uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for l.syncer.waits.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d writes wait for a sync, want %d", l.syncer.waits.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSharedSyncMode: fsync: always on the embedded server (group commit
// auto) runs shared syncs and no atomic batches; the appends are stored
// and counted.
func TestSharedSyncMode(t *testing.T) {
	l := openLog(t, Config{DataDir: t.TempDir(), SyncAlways: true})
	if !canSyncFS {
		if l.syncer != nil || l.group == nil {
			t.Fatal("without syncfs, auto must fall back to batches")
		}
		return
	}
	if l.syncer == nil || l.group != nil || !l.AppendStats().SharedSync {
		t.Fatalf("shared sync %v, batches %v; want shared sync only", l.syncer != nil, l.group != nil)
	}
	if l.setupInfo.Config.AllowAtomicPublish {
		t.Error("the stream allows atomic batches, which shared syncs do not use")
	}
	for i := range 3 {
		ev := event(i)
		app, err := l.Append(context.Background(), ev)
		if err != nil {
			t.Fatal(err)
		}
		checkStored(t, l, app.Seq, ev)
	}
	if st := l.AppendStats(); !st.SharedSync || st.Syncs != 3 || st.SyncedWrites != 3 {
		t.Fatalf("stats %+v, want 3 syncs for 3 writes", st)
	}
}

// TestSharedSyncWaitsForALaterSync: an append that comes while a sync
// runs is not answered by that sync (which may have begun before its
// write) but by the next one, which all such appends share.
func TestSharedSyncWaitsForALaterSync(t *testing.T) {
	l := openLog(t, Config{DataDir: t.TempDir(), SyncAlways: true})
	g := gateSyncs(t, l)
	first := make(chan error, 1)
	go func() {
		_, err := l.Append(context.Background(), event(0))
		first <- err
	}()
	g.waitBegan(t) // the first sync runs, held at the gate

	const n = 32
	var answered atomic.Int32
	results := make(chan Appended, n)
	var wg sync.WaitGroup
	for i := 1; i <= n; i++ {
		wg.Go(func() {
			app, err := l.Append(context.Background(), event(i))
			if err != nil {
				t.Error(err)
			}
			answered.Add(1)
			results <- app
		})
	}
	waitWaiting(t, l, n+1) // all stored, all waiting for a sync
	g.release <- nil       // the first sync ends
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	g.waitBegan(t) // the second begins, for the 32
	time.Sleep(50 * time.Millisecond)
	if a := answered.Load(); a != 0 {
		t.Fatalf("%d appends answered by a sync that began before their writes", a)
	}
	g.release <- nil
	wg.Wait()
	close(results)
	seen := map[uint64]bool{}
	for app := range results {
		if app.Duplicate || seen[app.Seq] {
			t.Fatalf("append %+v: a duplicate or a shared position", app)
		}
		seen[app.Seq] = true
	}
	if st := l.AppendStats(); st.Syncs != 2 || st.SyncedWrites != n+1 {
		t.Fatalf("stats %+v, want 2 syncs for %d writes", st, n+1)
	}
}

// TestSharedSyncFailure: a failed sync fails the appends that waited for
// it (503 to the vendor, whose retry is then answered as a duplicate once
// a sync succeeds); the event is stored once.
func TestSharedSyncFailure(t *testing.T) {
	l := openLog(t, Config{DataDir: t.TempDir(), SyncAlways: true, GuardWindow: time.Minute})
	g := gateSyncs(t, l)
	ev := event(7)
	done := make(chan error, 1)
	go func() {
		_, err := l.Append(context.Background(), ev)
		done <- err
	}()
	g.waitBegan(t)
	g.release <- errors.New("EIO")
	if err := <-done; !errors.Is(err, ErrUnavailable) {
		t.Fatalf("append after a failed sync: %v, want ErrUnavailable", err)
	}
	go func() {
		g.waitBegan(t)
		g.release <- nil
	}()
	app, err := l.Append(context.Background(), ev)
	if err != nil || !app.Duplicate {
		t.Fatalf("retry: %+v, %v; want a duplicate", app, err)
	}
	checkStored(t, l, app.Seq, ev)
	info, err := l.stream.Info(context.Background())
	if err != nil || info.State.Msgs != 1 {
		t.Fatalf("stream holds %v messages (%v), want 1", info, err)
	}
}

// TestSharedSyncQuarantine: a quarantine write waits for a sync too.
func TestSharedSyncQuarantine(t *testing.T) {
	l := openLog(t, Config{DataDir: t.TempDir(), SyncAlways: true})
	g := gateSyncs(t, l)
	done := make(chan error, 1)
	go func() {
		_, err := l.Quarantine(context.Background(), &hookstreamv1.QuarantinedRequest{Id: "q1", Source: "closer", Body: []byte("{")})
		done <- err
	}()
	g.waitBegan(t)
	select {
	case err := <-done:
		t.Fatalf("quarantine answered before its sync ended: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	g.release <- nil
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.QuarantineEntry(context.Background(), "q1"); err != nil {
		t.Fatal(err)
	}
}

// TestSharedSyncClose: writes waiting for a sync when the log closes get
// it before the syncer stops; later Sync calls fail at once.
func TestSharedSyncClose(t *testing.T) {
	ctx := context.Background()
	l := openLog(t, Config{DataDir: t.TempDir(), SyncAlways: true})
	g := gateSyncs(t, l)
	first := make(chan error, 1)
	go func() { first <- l.Sync(ctx) }()
	g.waitBegan(t)
	second := make(chan error, 1)
	go func() { second <- l.Sync(ctx) }()
	waitWaiting(t, l, 2)
	closed := make(chan struct{})
	go func() { l.syncer.close(); close(closed) }()
	g.release <- nil // the sync in flight
	g.waitBegan(t)   // the one the second write waits for
	g.release <- nil
	<-closed
	if err := <-first; err != nil {
		t.Fatalf("the sync in flight at close: %v", err)
	}
	if err := <-second; err != nil {
		t.Fatalf("the write waiting at close: %v", err)
	}
	if err := l.Sync(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Sync after close: %v, want ErrUnavailable", err)
	}
}

// TestSharedSyncFollowsTheLastBlock: a sync fdatasyncs the events' and
// the quarantine's last blocks, and falls back to syncfs (the round
// counted in full) only when a store changed shape: at first, when no
// block was open yet, and after a purge moved the stream's blocks; a
// stream without blocks costs nothing.
func TestSharedSyncFollowsTheLastBlock(t *testing.T) {
	ctx := context.Background()
	l := openLog(t, Config{DataDir: t.TempDir(), SyncAlways: true})
	if l.syncer == nil {
		t.Skip("no shared sync on this platform")
	}
	// A stream with nothing in it (here: none at all) needs no sync, and
	// must not make every round a syncfs.
	l.SyncStreams("NOT_CREATED")
	tails := l.syncer.tails
	full := func() uint64 { f, _ := tails.counts(); return f }
	appendN := func(from, n int) {
		t.Helper()
		for i := from; i < from+n; i++ {
			if _, err := l.Append(ctx, event(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := l.Quarantine(ctx, &hookstreamv1.QuarantinedRequest{Id: "q1", Source: "closer", Body: []byte("{")}); err != nil {
		t.Fatal(err)
	}
	appendN(0, 2) // the first rounds open the blocks
	before := full()
	appendN(2, 5)
	if got := full(); got != before {
		t.Fatalf("%d rounds fell back to syncfs with the blocks unchanged", got-before)
	}
	// Only a block that grew is synced: an append syncs the events' block
	// alone, a sync after no write syncs nothing.
	datasyncs := func() uint64 { _, d := tails.counts(); return d }
	d := datasyncs()
	appendN(7, 1)
	if got := datasyncs() - d; got != 1 {
		t.Fatalf("an append synced %d blocks, want the events' one", got)
	}
	if err := l.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := datasyncs() - d; got != 1 {
		t.Fatalf("a sync after no write synced %d more blocks", got-1)
	}
	checkTail := func() {
		t.Helper()
		tails.mu.Lock()
		defer tails.mu.Unlock()
		b := tails.tails[l.cfg.Stream]
		last, ok, err := lastBlock(b.dir)
		if err != nil || !ok || b.f == nil || b.idx != last {
			t.Fatalf("following block %d (open %v) of %s, last is %d (%v, %v)", b.idx, b.f != nil, b.dir, last, ok, err)
		}
	}
	checkTail()
	if err := l.stream.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	appendN(20, 1)
	if got := full(); got != before+1 {
		t.Fatalf("after a purge, %d rounds fell back to syncfs, want 1", got-before)
	}
	appendN(21, 3)
	if got := full(); got != before+1 {
		t.Fatalf("after the purge's round, %d more rounds fell back to syncfs", got-before-1)
	}
	checkTail()
}

// TestSharedSyncAppendSyncsItsStream: an append's round syncs the events'
// block alone, even when another tracked stream has grown meanwhile (a
// write that did not wait); a Sync, which covers every stream, then syncs
// that one's block.
func TestSharedSyncAppendSyncsItsStream(t *testing.T) {
	ctx := context.Background()
	l := openLog(t, Config{DataDir: t.TempDir(), SyncAlways: true})
	if l.syncer == nil {
		t.Skip("no shared sync on this platform")
	}
	tails := l.syncer.tails
	datasyncs := func() uint64 { _, d := tails.counts(); return d }
	// The first rounds open each stream's block (a syncfs each).
	if _, err := l.Quarantine(ctx, &hookstreamv1.QuarantinedRequest{Id: "q1", Source: "closer", Body: []byte("{")}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := l.Append(ctx, event(i)); err != nil {
			t.Fatal(err)
		}
	}
	// The quarantine bucket grows without waiting for a sync.
	if _, err := l.quarantine.Put(ctx, "q2", []byte("not waited for")); err != nil {
		t.Fatal(err)
	}
	d := datasyncs()
	if _, err := l.Append(ctx, event(2)); err != nil {
		t.Fatal(err)
	}
	if got := datasyncs() - d; got != 1 {
		t.Fatalf("an append synced %d blocks, want the events' one", got)
	}
	if err := l.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := datasyncs() - d; got != 2 {
		t.Fatalf("a Sync after it synced %d more blocks, want the quarantine bucket's one", got-1)
	}
}

// TestSharedSyncAfterAFailedRound: a round that fails (here one stream's
// fdatasync) leaves nothing counted as on disk. A stream whose store
// changed shape in that round had its new block opened, to be covered by
// the syncfs the failure skipped; the next round must still cover it, with
// a syncfs (which writes the new file's directory entry too). The failing
// stream and the one that changed shape meet in either order across
// the runs (map order), so both are checked.
func TestSharedSyncAfterAFailedRound(t *testing.T) {
	for run := range 16 {
		tails := newStreamTails(t.TempDir())
		msgs := func(stream string) string { return filepath.Join(tails.root, stream, "msgs") }
		write := func(stream string, idx uint64, data string) {
			t.Helper()
			if err := os.MkdirAll(msgs(stream), 0o755); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(blockPath(msgs(stream), idx), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = f.Close() }()
			if _, err := f.WriteString(data); err != nil {
				t.Fatal(err)
			}
		}
		fulls := 0
		full := func() error { fulls++; return nil }
		all := func(string) bool { return true }
		write("A", 1, "a1")
		write("B", 1, "b1")
		tails.add("A", "B")
		if err := tails.sync(all, full); err != nil { // opens both blocks, with a syncfs
			t.Fatal(err)
		}
		write("B", 1, "b2")             // B grows: its block is fdatasynced, which fails
		write("A", 2, "a2, waited for") // A's store changes shape: a new block
		tails.fdatasync = func(f *os.File) error {
			if strings.Contains(f.Name(), filepath.Join("B", "msgs")) {
				return errors.New("EIO")
			}
			return fdatasync(f)
		}
		if err := tails.sync(all, full); err == nil {
			t.Fatalf("run %d: a round whose fdatasync failed succeeded", run)
		}
		tails.fdatasync = fdatasync
		before := fulls
		if err := tails.sync(all, full); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		if fulls != before+1 {
			t.Fatalf("run %d: the round after a failed one made %d syncfs, want 1 (A's new block was never synced)", run, fulls-before)
		}
		tails.close()
	}
}

// counts are the rounds that fell back to syncfs and the blocks synced on
// their own so far.
func (t *streamTails) counts() (full, datasyncs uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.full, t.datasyncs
}

// TestLastBlock: the highest-numbered block file, whatever else the
// directory holds; none in an empty or missing directory.
func TestLastBlock(t *testing.T) {
	dir := t.TempDir()
	if _, ok, err := lastBlock(filepath.Join(dir, "missing")); ok || err != nil {
		t.Fatalf("missing dir: %v, %v", ok, err)
	}
	if _, ok, err := lastBlock(dir); ok || err != nil {
		t.Fatalf("empty dir: %v, %v", ok, err)
	}
	for _, name := range []string{"3.blk", "12.blk", "9.blk", "index.db", "13.blk.tmp", "x.blk", "2.key"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if idx, ok, err := lastBlock(dir); idx != 12 || !ok || err != nil {
		t.Fatalf("lastBlock = %d, %v, %v; want 12", idx, ok, err)
	}
}
