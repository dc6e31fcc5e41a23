package eventlog

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// damageBlock overwrites 4 KiB of the stream's last message block with
// random bytes at the given fraction of its length, as a failing disk or a
// stray write would, while the service is stopped.
func damageBlock(t *testing.T, dataDir string, at float64) {
	t.Helper()
	blks, err := filepath.Glob(filepath.Join(dataDir, "jetstream", "*", "streams", defaultStream, "msgs", "*.blk"))
	if err != nil || len(blks) == 0 {
		t.Fatalf("no message blocks under %s: %v", dataDir, err)
	}
	path := blks[len(blks)-1]
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, 4096)
	if _, err := rand.Read(junk); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(junk, int64(float64(fi.Size())*at)); err != nil {
		t.Fatal(err)
	}
}

// syncBuffer collects log output written from any goroutine (NATS
// callbacks log after a connection closes).
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *syncBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
}

func openLogWithLogs(t *testing.T, cfg Config, out *syncBuffer) *Log {
	t.Helper()
	cfg.GuardWindow = guard
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := Open(ctx, cfg, slog.New(slog.NewTextHandler(out, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// A log whose storage lost acknowledged events while the service was
// stopped says so loudly at the next start, and never hands out a lost
// position again: a consumer's stored cursor stays valid and new events
// come after it.
func TestDamagedLogIsReportedAndPositionsNotReused(t *testing.T) {
	for _, tc := range []struct {
		name string
		at   float64 // where in the last block the junk goes
	}{
		{"middle of the last block (the log's end moves back)", 0.5},
		{"end of the last block", 0.97},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var out syncBuffer
			l := openLogWithLogs(t, Config{DataDir: dir}, &out)
			const n = 300
			for i := range n {
				mustAppend(t, l, event(i))
			}
			waitIndexed(t, l, n)
			l.Close()
			if l.Damage() != nil {
				t.Fatal("an undamaged log reports damage")
			}

			damageBlock(t, dir, tc.at)
			out.Reset()
			l = openLogWithLogs(t, Config{DataDir: dir}, &out)
			d := l.Damage()
			if d == nil || d.Lost() == 0 {
				t.Fatalf("damage not detected; logs:\n%s", out.String())
			}
			t.Logf("detected: %s", d)
			if !strings.Contains(out.String(), "level=ERROR") || !strings.Contains(out.String(), "event log damaged") {
				t.Errorf("no error log for the damage:\n%s", out.String())
			}
			if got := l.IndexStatus().LostEvents; got != d.Lost() {
				t.Errorf("IndexStatus().LostEvents = %d, want %d", got, d.Lost())
			}
			if last := lastSeq(t, l); last < n {
				t.Errorf("log end %d after the start, want at least %d: lost positions would be handed out again", last, n)
			}
			app := mustAppend(t, l, event(n+1))
			if app.Seq <= n {
				t.Errorf("a new event got position %d, which was handed out before the damage", app.Seq)
			}
			// A lost event sent again (a vendor retry) is stored anew, not
			// taken for a duplicate of its lost copy.
			var retried bool
			for i := range n {
				if _, _, err := l.Get(context.Background(), event(i).GetId(), GetOptions{}); errors.Is(err, ErrNotFound) {
					again := mustAppend(t, l, event(i))
					if again.Duplicate || again.Seq <= n {
						t.Errorf("resent lost event %d: %+v, want a new position", i, again)
					}
					retried = true
					break
				}
			}
			if !retried {
				t.Error("no event of the damaged range is missing")
			}
			l.Close()

			// The next start does not report the same damage again.
			out.Reset()
			l = openLogWithLogs(t, Config{DataDir: dir}, &out)
			defer l.Close()
			if d := l.Damage(); d != nil {
				t.Errorf("restart after the damage was handled reports it again: %s", d)
			}
		})
	}
}

// Zeroing a segment's slots keeps its header valid, so the files look
// whole: the start checks a sample of the log against the index, notices,
// and rebuilds, so retries older than the guard are still duplicates.
func TestZeroedIndexSegmentIsRebuilt(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{DataDir: dir}
	l := openLog(t, cfg)
	const n = 500
	seqs := map[int]uint64{}
	for i := range n {
		seqs[i] = mustAppend(t, l, event(i)).Seq
	}
	waitIndexed(t, l, seqs[n-1])
	l.Close()

	segs, err := filepath.Glob(filepath.Join(dir, "idindex", defaultStream, "*.seg"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no segments: %v", err)
	}
	for _, path := range segs {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		const header = 4096
		if _, err := f.WriteAt(make([]byte, fi.Size()-header), header); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}

	time.Sleep(2 * guard) // past JetStream's own guard: only the index can tell
	var out syncBuffer
	l = openLogWithLogs(t, cfg, &out)
	defer l.Close()
	if !strings.Contains(out.String(), "lost entries the log still has") {
		t.Errorf("the damaged index was not noticed:\n%s", out.String())
	}
	for i := range n {
		if app := mustAppend(t, l, event(i)); !app.Duplicate || app.Seq != seqs[i] {
			t.Fatalf("retry of event %d = %+v, want a duplicate of %d", i, app, seqs[i])
		}
	}
}
