package idindex

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// id returns the i-th test event id (32 hex digits, like real ids).
func id(i int) string {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(i))
	sum := sha256.Sum256(b[:])
	return hex.EncodeToString(sum[:16])
}

func open(t testing.TB, dir string, opts Options) *Index {
	t.Helper()
	x, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(x.Close)
	return x
}

func TestKeyOf(t *testing.T) {
	a := id(1)
	k := KeyOf(a)
	if hex.EncodeToString(k[:]) != a {
		t.Errorf("KeyOf(%s) = %x, want the decoded id", a, k)
	}
	upper := KeyOf(strings.ToUpper(a))
	if upper != k {
		t.Errorf("hex case changed the key")
	}
	odd := []string{"", "x", "not-hex-but-32-characters-long!!", a + "0"}
	seen := map[Key]string{k: a}
	for _, s := range odd {
		ok := KeyOf(s)
		if prev, dup := seen[ok]; dup {
			t.Errorf("KeyOf(%q) = KeyOf(%q)", s, prev)
		}
		seen[ok] = s
		if KeyOf(s) != ok {
			t.Errorf("KeyOf(%q) is not stable", s)
		}
	}
}

func TestInsertLookupAcrossSegments(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	x := open(t, t.TempDir(), Options{Window: time.Hour, MinSlots: 64, MaxSlots: 1024, Now: func() time.Time { return now }})
	const n = 5000
	for i := 1; i <= n; i++ {
		if err := x.Insert(KeyOf(id(i)), uint64(i), now); err != nil {
			t.Fatal(err)
		}
	}
	st := x.Stats()
	if st.Entries != n {
		t.Errorf("entries = %d, want %d", st.Entries, n)
	}
	// 64 slots take 32 entries, then sizes double up to 1024 (512 entries).
	if st.Segments < 10 {
		t.Errorf("segments = %d, want the index to have rotated many times", st.Segments)
	}
	for i := 1; i <= n; i++ {
		e, ok, err := x.Lookup(KeyOf(id(i)))
		if err != nil || !ok || e.Seq != uint64(i) || !e.Stored.Equal(now) {
			t.Fatalf("Lookup(id %d) = %+v, %v, %v", i, e, ok, err)
		}
	}
	for i := n + 1; i <= 2*n; i++ {
		if e, ok, err := x.Lookup(KeyOf(id(i))); err != nil || ok {
			t.Fatalf("Lookup(absent id %d) = %+v, %v, %v", i, e, ok, err)
		}
	}
}

func TestInsertIsIdempotent(t *testing.T) {
	x := open(t, t.TempDir(), Options{Window: time.Hour, MinSlots: 64})
	now := time.Now()
	for range 3 {
		if err := x.Insert(KeyOf(id(7)), 70, now); err != nil {
			t.Fatal(err)
		}
	}
	if got := x.Stats().Entries; got != 1 {
		t.Errorf("entries after inserting one key three times = %d", got)
	}
	if err := x.Insert(KeyOf(id(7)), 0, now); err == nil {
		t.Error("position 0 was accepted")
	}
}

func TestCommitAndReopen(t *testing.T) {
	dir := t.TempDir()
	now := time.Unix(1_800_000_000, 0)
	opts := Options{Window: time.Hour, MinSlots: 64, MaxSlots: 256, Now: func() time.Time { return now }}
	x, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := x.ReadCheckpoint(); ok || err != nil {
		t.Fatalf("new index has a checkpoint: %v %v", ok, err)
	}
	for i := 1; i <= 1000; i++ {
		if err := x.Insert(KeyOf(id(i)), uint64(i), now); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.Commit(Checkpoint{Log: "stream-a", Seq: 1000, At: now.UTC()}); err != nil {
		t.Fatal(err)
	}
	before := x.Stats()
	x.Close()

	y := open(t, dir, opts)
	cp, ok, err := y.ReadCheckpoint()
	if err != nil || !ok || cp != (Checkpoint{Log: "stream-a", Seq: 1000, At: now.UTC()}) {
		t.Fatalf("checkpoint after reopen = %+v %v %v", cp, ok, err)
	}
	if after := y.Stats(); after != before {
		t.Errorf("stats after reopen = %+v, before %+v", after, before)
	}
	for i := 1; i <= 1000; i++ {
		if e, ok, _ := y.Lookup(KeyOf(id(i))); !ok || e.Seq != uint64(i) {
			t.Fatalf("id %d lost across reopen", i)
		}
	}
	// New inserts go to a new file, not over an old one.
	if err := y.Insert(KeyOf(id(5000)), 5000, now); err != nil {
		t.Fatal(err)
	}
	if e, ok, _ := y.Lookup(KeyOf(id(1))); !ok || e.Seq != 1 {
		t.Error("an insert after reopen overwrote an older entry")
	}

	if err := y.Reset(); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := y.ReadCheckpoint(); ok {
		t.Error("checkpoint survived Reset")
	}
	if _, ok, _ := y.Lookup(KeyOf(id(1))); ok {
		t.Error("entry survived Reset")
	}
}

func TestExpire(t *testing.T) {
	start := time.Unix(1_800_000_000, 0)
	now := start
	x := open(t, t.TempDir(), Options{Window: time.Hour, MinSlots: 64, Now: func() time.Time { return now }})
	// One id a minute for three hours: segments seal every quarter hour.
	for i := 0; i < 180; i++ {
		now = start.Add(time.Duration(i) * time.Minute)
		if err := x.Insert(KeyOf(id(i)), uint64(i+1), now); err != nil {
			t.Fatal(err)
		}
		if err := x.Expire(); err != nil {
			t.Fatal(err)
		}
	}
	// Every id of the last window is remembered...
	for i := 179 - 60; i < 180; i++ {
		if _, ok, _ := x.Lookup(KeyOf(id(i))); !ok {
			t.Errorf("id stored %d minutes ago was forgotten", 179-i)
		}
	}
	// ...and nothing older than 1.25 windows plus a segment.
	for i := 0; i < 179-90; i++ {
		if _, ok, _ := x.Lookup(KeyOf(id(i))); ok {
			t.Errorf("id stored %d minutes ago is still there", 179-i)
		}
	}
	if st := x.Stats(); st.Segments > 7 {
		t.Errorf("%d segments for one window of quarter-hour segments", st.Segments)
	}
	// After a long quiet time only the newest segment remains.
	now = now.Add(10 * time.Hour)
	if err := x.Expire(); err != nil {
		t.Fatal(err)
	}
	if st := x.Stats(); st.Segments != 1 {
		t.Errorf("after a quiet day: %d segments, want the newest only", st.Segments)
	}
}

func TestSegmentsShrinkWhenQuiet(t *testing.T) {
	start := time.Unix(1_800_000_000, 0)
	x := open(t, t.TempDir(), Options{Window: time.Hour, MinSlots: 64, MaxSlots: 4096})
	seq := uint64(0)
	for i := 0; i < 3000; i++ { // a burst: segments grow
		seq++
		if err := x.Insert(KeyOf(id(int(seq))), seq, start); err != nil {
			t.Fatal(err)
		}
	}
	grown := x.segs[len(x.segs)-1].slots
	for i := 0; i < 8; i++ { // then one id per 20 minutes: each seals by age
		seq++
		if err := x.Insert(KeyOf(id(int(seq))), seq, start.Add(time.Duration(i+1)*20*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if got := x.segs[len(x.segs)-1].slots; grown <= 64 || got != 64 {
		t.Errorf("segment size grew to %d slots, then became %d after a quiet time; want growth then 64", grown, got)
	}
}

// TestFullSegment covers a segment whose count is too low (as after a
// crash between commits): lookups in a full table answer "absent" and
// inserts move to a new segment.
func TestFullSegment(t *testing.T) {
	x := open(t, t.TempDir(), Options{Window: time.Hour, MinSlots: 16, MaxSlots: 16})
	now := time.Now()
	for i := 1; i <= 16; i++ {
		if err := x.Insert(KeyOf(id(i)), uint64(i), now); err != nil {
			t.Fatal(err)
		}
		x.segs[len(x.segs)-1].count = 0 // hide how full it is
	}
	if n := len(x.segs); n != 1 {
		t.Fatalf("%d segments, want the one full segment", n)
	}
	if _, ok, err := x.Lookup(KeyOf(id(99))); ok || err != nil {
		t.Fatalf("lookup in a full segment: %v %v", ok, err)
	}
	x.segs[0].count = 0
	if err := x.Insert(KeyOf(id(17)), 17, now); err != nil {
		t.Fatalf("insert into a full segment: %v", err)
	}
	for i := 1; i <= 17; i++ {
		if e, ok, err := x.Lookup(KeyOf(id(i))); !ok || err != nil || e.Seq != uint64(i) {
			t.Fatalf("id %d: %+v %v %v", i, e, ok, err)
		}
	}
	if n := len(x.segs); n != 2 {
		t.Errorf("%d segments after overflowing, want 2", n)
	}
}

func TestForeignFileIsRefused(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "000000000000.seg"), []byte("not a segment"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir, Options{Window: time.Hour})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open over a foreign file: %v, want ErrCorrupt", err)
	}
	if err := Wipe(dir); err != nil {
		t.Fatal(err)
	}
	x, err := Open(dir, Options{Window: time.Hour})
	if err != nil {
		t.Fatalf("Open after Wipe: %v", err)
	}
	x.Close()
	if _, _, err := x.Lookup(KeyOf(id(1))); !errors.Is(err, ErrClosed) {
		t.Errorf("Lookup after Close: %v, want ErrClosed", err)
	}
	if err := x.Insert(KeyOf(id(1)), 1, time.Now()); !errors.Is(err, ErrClosed) {
		t.Errorf("Insert after Close: %v, want ErrClosed", err)
	}
	if _, err := Open(t.TempDir(), Options{}); err == nil {
		t.Error("Open without a window succeeded")
	}
	if _, err := Open(t.TempDir(), Options{Window: time.Hour, MinSlots: 100}); err == nil {
		t.Error("Open with a segment size that is not a power of two succeeded")
	}
}

func TestOneProcessPerDirectory(t *testing.T) {
	dir := t.TempDir()
	x, err := Open(dir, Options{Window: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{Window: time.Hour}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Open of one directory: %v", err)
	}
	x.Close()
	y, err := Open(dir, Options{Window: time.Hour})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	y.Close()
}

func TestTornCheckpointMeansUnknown(t *testing.T) {
	dir := t.TempDir()
	x := open(t, dir, Options{Window: time.Hour})
	if err := os.WriteFile(filepath.Join(dir, checkpointFile), []byte(`{"log":"a","se`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := x.ReadCheckpoint(); ok || err != nil {
		t.Errorf("torn checkpoint read as ok=%v err=%v", ok, err)
	}
}

// TestHeapStaysFlat is the reason this package exists: the ids live in
// files, so the heap does not grow with the number of ids remembered.
func TestHeapStaysFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("inserts 300,000 ids")
	}
	x := open(t, t.TempDir(), Options{Window: time.Hour})
	now := time.Now()
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	const n = 300_000
	insert := func(from, to int) {
		for i := from; i < to; i++ {
			if err := x.Insert(KeyOf(id(i)), uint64(i+1), now); err != nil {
				t.Fatal(err)
			}
		}
	}
	insert(0, n/10)
	before := heap()
	insert(n/10, n)
	after := heap()
	// JetStream's in-memory dedup would hold about 170 B per id here (46 MB).
	if growth := int64(after) - int64(before); growth > 1<<20 {
		t.Errorf("heap grew by %d bytes for %d ids", growth, n*9/10)
	}
	t.Logf("heap %d → %d bytes; %+v", before, after, x.Stats())
	if _, ok, _ := x.Lookup(KeyOf(id(n - 1))); !ok {
		t.Error("last id not found")
	}
}

func BenchmarkLookupMiss(b *testing.B) {
	x := open(b, b.TempDir(), Options{Window: time.Hour})
	now := time.Now()
	for i := 0; i < 100_000; i++ {
		if err := x.Insert(KeyOf(id(i)), uint64(i+1), now); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, ok, err := x.Lookup(KeyOf(id(1_000_000 + i))); ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

func BenchmarkInsert(b *testing.B) {
	x := open(b, b.TempDir(), Options{Window: time.Hour})
	now := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := x.Insert(KeyOf(id(i)), uint64(i+1), now); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzParse feeds arbitrary bytes to the two on-disk decoders, a segment
// header and a checkpoint: they accept or refuse, never panic, and what
// they accept is self-consistent.
func FuzzParse(f *testing.F) {
	seg := &segment{slots: 64, count: 3, first: time.Unix(1_800_000_000, 0), last: time.Unix(1_800_000_060, 0)}
	page := make([]byte, headerSize)
	copy(page, magic)
	b, _ := json.Marshal(header{Slots: seg.slots, Count: seg.count, First: seg.first.Unix(), Last: seg.last.Unix()})
	copy(page[len(magic):], b)
	f.Add(page, int64(headerSize+64*slotSize), []byte(`{"log":"s@2026-11-23T00:00:00Z","seq":1,"at":"2026-11-23T00:00:01Z"}`))
	f.Add(page[:len(magic)+5], int64(0), []byte(`{"log":"","seq":1}`))
	f.Add([]byte(magic+`{"slots":8}`), int64(headerSize+8*slotSize), []byte(`[]`))
	f.Fuzz(func(t *testing.T, page []byte, size int64, cp []byte) {
		if h, err := parseHeader(page, size); err == nil {
			if !isPow2(h.Slots) || h.Slots < probeChunk || size != headerSize+int64(h.Slots)*slotSize {
				t.Fatalf("accepted header %+v for size %d", h, size)
			}
		}
		if c, ok := parseCheckpoint(cp); ok && c.Log == "" {
			t.Fatalf("accepted checkpoint without a log: %+v", c)
		}
	})
}
