package eventlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

func quarantined(i, size int) *hookstreamv1.QuarantinedRequest {
	return &hookstreamv1.QuarantinedRequest{
		Id: fmt.Sprintf("%032x", i), Source: "src", Body: bytes.Repeat([]byte{'x'}, size),
		State: hookstreamv1.QuarantineState_QUARANTINE_STATE_PENDING,
	}
}

// A bucket made without limits (as by an older version) gets them at the
// next start; when full it refuses new entries, and a discard makes room.
func TestQuarantineLimits(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	old, err := Open(ctx, Config{DataDir: dir, GuardWindow: guard}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	st, err := old.QuarantineStatus(ctx)
	if err != nil || st.MaxBytes != -1 || st.MaxAge != 0 {
		t.Fatalf("bucket without limits: %+v %v", st, err)
	}
	if _, err := old.Quarantine(ctx, quarantined(1000, 10)); err != nil {
		t.Fatal(err)
	}
	old.Close()

	l := openLog(t, Config{DataDir: dir, QuarantineMaxBytes: 64 << 10, QuarantineMaxAge: 3 * time.Hour})
	st, err = l.QuarantineStatus(ctx)
	if err != nil || st.MaxBytes != 64<<10 || st.MaxAge != 3*time.Hour {
		t.Fatalf("limits after restart: %+v %v, want 64KiB and 3h", st, err)
	}
	if q, _, err := l.QuarantineEntry(ctx, quarantined(1000, 10).GetId()); err != nil || q.GetSource() != "src" {
		t.Fatalf("entry from before the update: %v %v", q, err)
	}

	var stored []*hookstreamv1.QuarantinedRequest
	var refused *hookstreamv1.QuarantinedRequest
	for i := 0; refused == nil; i++ {
		q := quarantined(i, 4000)
		switch created, err := l.Quarantine(ctx, q); {
		case errors.Is(err, ErrQuarantineFull):
			refused = q
		case err != nil || !created:
			t.Fatalf("entry %d: created=%v %v", i, created, err)
		case i > 100:
			t.Fatal("64KiB bucket never full")
		default:
			stored = append(stored, q)
		}
	}
	if len(stored) < 12 || len(stored) > 16 {
		t.Errorf("a 64KiB bucket took %d entries of 4000 bytes, want 12 to 16", len(stored))
	}
	if _, _, err := l.QuarantineEntry(ctx, refused.GetId()); !errors.Is(err, ErrNotFound) {
		t.Errorf("refused entry: %v, want not stored", err)
	}
	// A retry of a stored entry is still recognised while full.
	if created, err := l.Quarantine(ctx, stored[0]); err != nil || created {
		t.Errorf("retry of a stored entry while full: created=%v %v", created, err)
	}
	// Room comes back at once when entries are discarded.
	for _, q := range stored[:2] {
		if err := l.DiscardQuarantine(ctx, q.GetId()); err != nil {
			t.Fatal(err)
		}
		if _, _, err := l.QuarantineEntry(ctx, q.GetId()); !errors.Is(err, ErrNotFound) {
			t.Errorf("discarded entry: %v", err)
		}
	}
	if err := l.DiscardQuarantine(ctx, stored[0].GetId()); !errors.Is(err, ErrNotFound) {
		t.Errorf("second discard: %v, want ErrNotFound", err)
	}
	if created, err := l.Quarantine(ctx, refused); err != nil || !created {
		t.Errorf("refused entry after discards: created=%v %v", created, err)
	}
}

// A scan skips purge markers, stops at Until, and continues where it ended.
func TestScanQuarantine(t *testing.T) {
	ctx := context.Background()
	l := openLog(t, Config{DataDir: t.TempDir()})
	for i := range 10 {
		if _, err := l.Quarantine(ctx, quarantined(i, 100)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.DiscardQuarantine(ctx, quarantined(3, 0).GetId()); err != nil {
		t.Fatal(err)
	}
	st, err := l.QuarantineStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Written after the pass began: left out when Until is set.
	if _, err := l.Quarantine(ctx, quarantined(10, 100)); err != nil {
		t.Fatal(err)
	}
	var got []string
	next := uint64(0)
	for calls := 1; ; calls++ {
		n, err := l.ScanQuarantine(ctx, QuarantineScan{From: next, Until: st.LastSeq + 1, MaxEntries: 4, MaxBytes: 1 << 20},
			func(q *hookstreamv1.QuarantinedRequest, rev uint64) bool {
				got = append(got, q.GetId()[30:])
				return true
			})
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if n <= next || calls > 10 {
			t.Fatalf("scan does not advance: %d after %d", n, next)
		}
		next = n
	}
	if fmt.Sprint(got) != "[00 01 02 04 05 06 07 08 09]" {
		t.Errorf("scanned %v, want 00-09 without the discarded 03 and the late 10", got)
	}
}
