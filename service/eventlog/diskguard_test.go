package eventlog

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/hookstream/hookstream/internal/natstest"
)

// While the log's file system is short of room, new events and quarantine
// entries are refused at once, naming the directory and its free space
// (logged once), duplicates of stored events are still answered, and as
// soon as there is room the log takes events again, without a restart.
func TestDiskGuardRefusesWritesWhileShort(t *testing.T) {
	ctx := context.Background()
	var out syncBuffer
	dir := t.TempDir()
	l := openLogWithLogs(t, Config{DataDir: dir}, &out)
	defer l.Close()
	var mu sync.Mutex
	free := map[string]uint64{}
	l.disk.free = func(d string) (uint64, error) {
		mu.Lock()
		defer mu.Unlock()
		if f, ok := free[d]; ok {
			return f, nil
		}
		return 1 << 40, nil
	}
	setFree := func(d string, n uint64) {
		mu.Lock()
		free[d] = n
		mu.Unlock()
		l.disk.checked.Store(0) // look again at the next write
	}
	first := mustAppend(t, l, event(1))
	waitIndexed(t, l, first.Seq) // a duplicate is known by the index
	if s := l.DiskShort(); s != "" {
		t.Fatalf("DiskShort with room: %q", s)
	}

	setFree(dir, 100<<20)
	start := time.Now()
	_, err := l.Append(ctx, event(2))
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "100.0 MiB free") ||
		!strings.Contains(err.Error(), "log.min_free_disk (256.0 MiB)") {
		t.Fatalf("append on a nearly full disk: %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("the refusal took %v; it must not wait for the write timeout", took)
	}
	if app, err := l.Append(ctx, event(1)); err != nil || !app.Duplicate || app.Seq != first.Seq {
		t.Errorf("a duplicate of a stored event on a nearly full disk: %+v, %v", app, err)
	}
	if _, err := l.Quarantine(ctx, quarantined(7, 10)); !errors.Is(err, ErrUnavailable) {
		t.Errorf("quarantine on a nearly full disk: %v", err)
	}
	if s := l.DiskShort(); !strings.Contains(s, dir) {
		t.Errorf("DiskShort = %q, want the data dir named", s)
	}
	// The index's file system counts too; the lowest is named.
	setFree(l.indexDir(), 50<<20)
	if _, err := l.Append(ctx, event(2)); err == nil || !strings.Contains(err.Error(), l.indexDir()) {
		t.Errorf("append with the index's file system shorter: %v", err)
	}
	if n := strings.Count(out.String(), "disk nearly full"); n != 1 {
		t.Errorf("%d log lines say the disk is nearly full, want 1:\n%s", n, out.String())
	}

	setFree(dir, 1<<30)
	setFree(l.indexDir(), 1<<30)
	if _, err := l.Append(ctx, event(2)); err != nil {
		t.Fatalf("append once there is room again: %v", err)
	}
	if _, err := l.Quarantine(ctx, quarantined(7, 10)); err != nil {
		t.Errorf("quarantine once there is room again: %v", err)
	}
	if s := l.DiskShort(); s != "" {
		t.Errorf("DiskShort once there is room: %q", s)
	}
	if !strings.Contains(out.String(), "disk has room again") {
		t.Errorf("no log line says the disk has room again:\n%s", out.String())
	}
}

// freeBytes measures a real file system.
func TestFreeBytes(t *testing.T) {
	n, err := freeBytes(t.TempDir())
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skip("not measured on this system")
	}
	if err != nil || n == 0 {
		t.Fatalf("freeBytes = %d, %v", n, err)
	}
	if _, err := freeBytes(t.TempDir() + "/missing"); err == nil {
		t.Error("freeBytes of a missing directory: no error")
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 256 << 20: "256.0 MiB", 3 << 30: "3.0 GiB", 1536 << 40: "1.5 PiB"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// A server whose storage cannot hold the quarantine's cap stops the start
// at once, saying what reserves how much and what to do, instead of
// retrying until the connect timeout.
func TestStartWithoutRoomForTheCaps(t *testing.T) {
	ns := natstest.Start(t, server.Options{JetStreamMaxStore: 32 << 20})
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := Open(ctx, Config{URL: ns.ClientURL(), DataDir: t.TempDir(), GuardWindow: guard, QuarantineMaxBytes: 64 << 20}, quiet())
	if err == nil {
		l.Close()
		t.Fatal("the log opened on a server without room for its caps")
	}
	for _, want := range []string{"insufficient storage", "quarantine.max_bytes, 64.0 MiB", "max_file_store", "README, Durability"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the start took %v to fail; retrying cannot help", took)
	}
}

// The embedded server takes caps larger than the disk (its storage is
// not sized from the free space at start): a disk smaller than the
// defaults' 10 GiB of caps still starts, and a server whose disk filled
// up still restarts. The disk guard is what keeps the disk from filling.
func TestEmbeddedStartsWithCapsBeyondTheDisk(t *testing.T) {
	dir := t.TempDir()
	free, err := freeBytes(dir)
	if err != nil {
		t.Skip("free space not measured on this system:", err)
	}
	capBytes := int64(min(2*free, 1<<48)) // more than nats-server's three quarters of the free space
	l := openLog(t, Config{DataDir: dir, QuarantineMaxBytes: capBytes})
	mustAppend(t, l, event(1))
	l.Close()
	openLog(t, Config{DataDir: dir, QuarantineMaxBytes: capBytes}).Close()
}
