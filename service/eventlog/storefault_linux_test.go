package eventlog

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A store write that fails (here: past a file size limit, EFBIG; on a
// full disk: ENOSPC) makes nats-server's file store refuse every later
// write to that stream, even once the cause is gone, until the stream is
// loaded again. The log restarts the embedded JetStream and takes writes
// again, without losing an acknowledged event, and the dedup index goes
// on. Not parallel: the file size limit is the whole test process's.
func TestStoreRecoversAfterAFailedWrite(t *testing.T) {
	ctx := context.Background()
	var out syncBuffer
	dir := t.TempDir()
	l := openLogWithLogs(t, Config{DataDir: dir}, &out)
	defer l.Close()
	var acked []Appended
	for i := 1; i <= 5; i++ {
		acked = append(acked, mustAppend(t, l, event(i)))
	}
	waitIndexed(t, l, acked[len(acked)-1].Seq)

	blocks, err := filepath.Glob(filepath.Join(dir, "jetstream", "*", "streams", l.cfg.Stream, "msgs", "*.blk"))
	if err != nil || len(blocks) == 0 {
		t.Fatalf("the stream's blocks: %v, %v", blocks, err)
	}
	var size int64
	for _, b := range blocks {
		if fi, err := os.Stat(b); err == nil {
			size = max(size, fi.Size())
		}
	}
	// Past the limit a write fails with EFBIG instead of killing the
	// process with SIGXFSZ.
	signal.Ignore(syscall.SIGXFSZ)
	defer signal.Reset(syscall.SIGXFSZ)
	var was syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &was); err != nil {
		t.Fatal(err)
	}
	limit := was
	limit.Cur = uint64(size) + 16
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &limit); err != nil {
		t.Skipf("cannot set a file size limit here: %v", err)
	}
	_, failed := l.Append(ctx, event(6))
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &was); err != nil {
		t.Fatal(err)
	}
	if failed == nil {
		t.Fatal("an append past the file size limit succeeded")
	}
	if !strings.Contains(out.String(), "Critical write error") {
		t.Fatalf("the embedded server did not log the failed write:\n%s", out.String())
	}
	if f := l.StoreFault(); !strings.Contains(f, "failed a write") || !strings.Contains(f, l.cfg.Stream) {
		t.Errorf("StoreFault = %q, want the failed write and the stream named", f)
	}
	// The limit is gone, but the store still refuses: what a restart of
	// the process used to be needed for.
	if _, err := l.Append(ctx, event(7)); err == nil {
		t.Fatal("the store took a write right after its failure: the test no longer shows the failure sticking")
	}

	var recovered Appended
	deadline := time.Now().Add(20 * time.Second)
	for {
		app, err := l.Append(ctx, event(8))
		if err == nil {
			recovered = app
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log did not take writes again within 20s: %v\n%s", err, out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if f := l.StoreFault(); f != "" {
		t.Errorf("StoreFault after the recovery = %q", f)
	}
	if !strings.Contains(out.String(), "JetStream restarted in the process") {
		t.Errorf("the recovery was not logged:\n%s", out.String())
	}
	waitIndexed(t, l, recovered.Seq)
	for i, app := range acked {
		st, _, err := l.Get(ctx, event(i+1).GetId(), GetOptions{})
		if err != nil || st.Seq != app.Seq {
			t.Errorf("acknowledged event %d after the recovery: %+v, %v", i+1, st.Seq, err)
		}
	}
	// A vendor's retry of an acknowledged event is still answered as a
	// duplicate once the index has caught up with the restarted stream.
	deadline = time.Now().Add(10 * time.Second)
	for {
		app, err := l.Append(ctx, event(3))
		if err == nil {
			if !app.Duplicate || app.Seq != acked[2].Seq {
				t.Errorf("a retry of event 3 after the recovery: %+v, want a duplicate at %d", app, acked[2].Seq)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a retry of event 3 after the recovery: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := strings.Count(out.String(), "restarting the embedded JetStream"); n != 1 {
		t.Errorf("%d restarts logged, want 1:\n%s", n, out.String())
	}
}

// A failure noted while the restart ran outlives the recovery it did not
// see; those before it do not.
func TestStoreWatchKeepsFailuresDuringTheRestart(t *testing.T) {
	w := &storeWatch{}
	t0 := time.Now()
	w.note("Filestore [A] Critical write error: no space left on device", t0)
	w.note("JetStream failed to store a msg", t0) // not a store fault
	w.note("Filestore [A] Critical write error: no space left on device", t0.Add(time.Millisecond))
	if f, n := w.current(); f == nil || n != 2 || !f.at.Equal(t0) {
		t.Fatalf("after two failures: %+v, %d", f, n)
	}
	w.recovered(t0.Add(time.Second))
	if f, n := w.current(); f != nil || n != 0 {
		t.Fatalf("after a recovery that began after them: %+v, %d", f, n)
	}
	w.note("Filestore [B] Critical write error: no space left on device", t0.Add(2*time.Second))
	w.note("Filestore [C] Critical write error: no space left on device", t0.Add(4*time.Second))
	w.recovered(t0.Add(3 * time.Second)) // C failed while that restart ran
	if f, n := w.current(); f == nil || n != 1 || !strings.Contains(f.line, "[C]") {
		t.Fatalf("a failure during the restart: %+v, %d", f, n)
	}
}
