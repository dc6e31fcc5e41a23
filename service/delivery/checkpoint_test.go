package delivery

import (
	"testing"
	"time"

	"github.com/hookstream/hookstream/service/eventlog"
)

func TestCheckpointRoundTrip(t *testing.T) {
	t.Parallel()
	now := time.UnixMilli(time.Now().UnixMilli())
	in := checkpoint{Cursor: 1 << 40, FailingSince: now.Add(-time.Hour), RedriveSeq: 77, Applied: 12, Log: "events@2026-12-07T12:00:00Z", Jobs: []*job{
		{seq: 5, id: "0123456789abcdef0123456789abcdef", key: 1<<63 + 5, attempts: 3, due: now.Add(time.Minute), first: now, recv: now.Add(-time.Second)},
		{seq: 9, id: "fedcba9876543210fedcba9876543210", attempts: 0, recv: now},
	}}
	out, err := decodeCheckpoint(in.encode())
	if err != nil {
		t.Fatal(err)
	}
	if out.Cursor != in.Cursor || !out.FailingSince.Equal(in.FailingSince) || out.RedriveSeq != in.RedriveSeq || out.Applied != 12 || out.Log != in.Log || len(out.Jobs) != 2 {
		t.Fatalf("got %+v", out)
	}
	for i, j := range out.Jobs {
		w := in.Jobs[i]
		if j.seq != w.seq || j.id != w.id || j.key != w.key || j.attempts != w.attempts ||
			!j.due.Equal(w.due) || !j.first.Equal(w.first) || !j.recv.Equal(w.recv) || j.idx != -1 {
			t.Errorf("job %d: got %+v, want %+v", i, j, w)
		}
	}
	// A checkpoint of a build before Log (nothing after Applied) is read
	// with no Log, and one before Applied (nothing after the jobs) as
	// Applied 0; each is read by such a build, which stops after what it
	// knows (the end of this encoding is the varint 12, then Log).
	full := in.encode()
	enc := full[:len(full)-1-len(in.Log)]
	if enc[len(enc)-1] != 12 || string(full[len(enc)+1:]) != in.Log {
		t.Fatalf("the checkpoint does not end with Applied and Log: %x", full[len(enc)-4:])
	}
	if noLog, err := decodeCheckpoint(enc); err != nil || noLog.Applied != 12 || noLog.Log != "" || noLog.Cursor != in.Cursor {
		t.Errorf("without Log: got %+v, %v", noLog, err)
	}
	old, err := decodeCheckpoint(enc[:len(enc)-1])
	if err != nil || old.Cursor != in.Cursor || old.RedriveSeq != in.RedriveSeq || old.Applied != 0 || len(old.Jobs) != 2 || old.Jobs[1].id != in.Jobs[1].id {
		t.Errorf("without Applied: got %+v, %v", old, err)
	}
	// Damaged or foreign values are refused, never half-read.
	for _, bad := range [][]byte{nil, {9}, enc[:len(enc)-3], full[:len(full)-3], append([]byte{checkpointVersion}, 0xff)} {
		if _, err := decodeCheckpoint(bad); err == nil {
			t.Errorf("decoded a damaged checkpoint %x", bad)
		}
	}
}

func TestSharedCacheBounded(t *testing.T) {
	t.Parallel()
	c := newShared()
	raw := make([]byte, 1<<20)
	for seq := uint64(1); seq <= 100; seq++ {
		c.get("", storedAt(seq, raw))
	}
	if c.bytes > sharedBytes {
		t.Errorf("cache holds %d bytes, bound %d", c.bytes, sharedBytes)
	}
	if _, ok := c.m[100]; !ok {
		t.Error("the newest event was evicted")
	}
	if _, ok := c.m[1]; ok {
		t.Error("the oldest event is still held past the byte bound")
	}
	small := newShared()
	for seq := uint64(1); seq <= sharedSize+10; seq++ {
		small.get("", storedAt(seq, []byte("x")))
	}
	if len(small.m) != sharedSize {
		t.Errorf("cache holds %d events, bound %d", len(small.m), sharedSize)
	}
	if a, b := small.get("", storedAt(sharedSize+10, nil)), small.get("", storedAt(sharedSize+10, nil)); a != b {
		t.Error("two reads of one position are not shared")
	}
}
func storedAt(seq uint64, raw []byte) eventlog.Stored { return eventlog.Stored{Seq: seq, Raw: raw} }
