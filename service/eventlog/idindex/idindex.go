// Package idindex is an on-disk map from event id to log position that
// remembers each id for a time window while keeping the process's memory
// flat, however many events the window holds.
//
// JetStream's own dedup keeps every message id of its window in memory
// (measured: about 170 bytes of heap, 260 bytes of RSS per event), so a
// window of hours at a steady rate grows the process by gigabytes. This
// index keeps the ids in files read and written with pread/pwrite: the
// kernel's page cache holds them, and only a fixed header per file lives in
// the heap.
//
// The index is a list of segments, each a fixed-size open-addressing hash
// table in its own file. New ids go into the newest segment; a segment
// that is half full, or older than a quarter of the window, is sealed and a
// new one started (twice as large when the last one filled up, half as
// large when it saw little traffic). A sealed segment is deleted once its
// newest entry is older than the window, so an id is remembered for at
// least the window and at most about 1.25 windows. Lookups probe every
// segment, newest first.
//
// The caller records, with Checkpoint, the log position up to which the
// index is complete; after a crash it replays the log from there. Insert is
// idempotent within a segment, so replaying what is already present only
// wastes a little space.
package idindex

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Errors. ErrCorrupt marks a directory whose files cannot be trusted (a
// torn segment after an OS crash, or a foreign file): discard it with Wipe
// and rebuild the index from the log.
var (
	ErrCorrupt = errors.New("idindex: unreadable segment")
	ErrClosed  = errors.New("idindex: closed")
)

// Key is the 128-bit form of an event id. Event ids are 32 hex digits (the
// first 128 bits of a SHA-256), which decode to their key; anything else is
// hashed.
type Key [16]byte

// KeyOf returns the key of an event id.
func KeyOf(id string) Key {
	var k Key
	if len(id) == 2*len(k) {
		if _, err := hex.Decode(k[:], []byte(id)); err == nil {
			return k
		}
	}
	sum := sha256.Sum256([]byte(id))
	copy(k[:], sum[:16])
	return k
}

func (k Key) hash() uint64 { return binary.LittleEndian.Uint64(k[:8]) }

// Entry is what the index holds for an id.
type Entry struct {
	// Seq is the event's position in the log.
	Seq uint64
	// Stored is when the log stored it (second precision).
	Stored time.Time
}

// Options configure an index. Zero values take the defaults.
type Options struct {
	// Window is how long an id is remembered at least. Required.
	Window time.Duration
	// MinSlots and MaxSlots bound the size of a segment in slots (powers of
	// two; 32 bytes each). Defaults: 1<<16 (2 MiB) and 1<<24 (512 MiB).
	MinSlots, MaxSlots uint64
	// Now returns the current time (tests).
	Now func() time.Time
}

const (
	slotSize   = 32
	headerSize = 4096
	magic      = "hookstream-idindex-v1\x00"
	// probeChunk is how many slots one read covers while probing.
	probeChunk = 16
	// segSuffix names segment files: <number, 12 digits>.seg, numbered in
	// the order they were created.
	segSuffix      = ".seg"
	checkpointFile = "checkpoint.json"
)

// Index is an open index. It is safe for concurrent use.
type Index struct {
	dir  string
	opts Options

	lock *os.File // held while open

	mu     sync.RWMutex
	closed bool
	segs   []*segment // oldest first; the last one takes inserts
	next   uint64     // number of the next segment file
}

// segment is one hash table file. Only its header fields live in memory.
type segment struct {
	f     *os.File
	path  string
	slots uint64 // power of two
	count uint64 // entries
	first time.Time
	last  time.Time // newest entry's store time
	dirty bool      // written since the last sync
	// sealed segments take no more inserts: every segment of an earlier
	// run is sealed, since its count may miss the writes after its last
	// commit.
	sealed bool
}

// Open opens (or creates) the index in dir. Segments of an earlier run are
// kept; use Checkpoint to learn how far they are complete.
func Open(dir string, opts Options) (*Index, error) {
	if opts.Window <= 0 {
		return nil, errors.New("idindex: a window is required")
	}
	if opts.MinSlots == 0 {
		opts.MinSlots = 1 << 16
	}
	if opts.MaxSlots == 0 {
		opts.MaxSlots = 1 << 24
	}
	if !isPow2(opts.MinSlots) || !isPow2(opts.MaxSlots) || opts.MinSlots > opts.MaxSlots || opts.MinSlots < probeChunk {
		return nil, fmt.Errorf("idindex: segment sizes %d..%d must be powers of two of at least %d", opts.MinSlots, opts.MaxSlots, probeChunk)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("idindex: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	x := &Index{dir: dir, opts: opts, lock: lock}
	names, err := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	if err != nil {
		x.Close()
		return nil, fmt.Errorf("idindex: %w", err)
	}
	slices.Sort(names) // zero-padded numbers sort in creation order
	for _, name := range names {
		s, err := openSegment(name)
		if err != nil {
			x.Close()
			return nil, err
		}
		x.segs = append(x.segs, s)
		x.next = max(x.next, segNumber(name)+1)
	}
	return x, nil
}

func openLockFile(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("idindex: %w", err)
	}
	return f, nil
}

func isPow2(n uint64) bool { return n != 0 && n&(n-1) == 0 }

// Reset deletes every segment and the checkpoint, for a rebuild.
func (x *Index) Reset() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, s := range x.segs {
		_ = s.f.Close()
		if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("idindex: %w", err)
		}
	}
	x.segs = nil
	if err := os.Remove(filepath.Join(x.dir, checkpointFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("idindex: %w", err)
	}
	return nil
}

// Close closes the segment files without syncing them, and releases the
// directory.
func (x *Index) Close() {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, s := range x.segs {
		_ = s.f.Close()
	}
	x.segs = nil
	x.closed = true
	if x.lock != nil {
		_ = x.lock.Close()
		x.lock = nil
	}
}

// Lookup returns the newest entry for key.
func (x *Index) Lookup(key Key) (Entry, bool, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.closed {
		return Entry{}, false, ErrClosed
	}
	for i := len(x.segs) - 1; i >= 0; i-- {
		e, _, found, err := x.segs[i].find(key)
		if err != nil {
			return Entry{}, false, err
		}
		if found {
			return e, true, nil
		}
	}
	return Entry{}, false, nil
}

// Insert records key at seq, stored at the given time. A key already in
// the newest segment is left as it is.
func (x *Index) Insert(key Key, seq uint64, stored time.Time) error {
	if seq == 0 {
		return errors.New("idindex: position 0 is not a log position")
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return ErrClosed
	}
	s, err := x.writable(stored)
	if err != nil {
		return err
	}
	_, slot, found, err := s.find(key)
	if err != nil || found {
		return err
	}
	if slot == noSlot { // cannot happen below half full; seal and go on
		s.sealed = true
		if s, err = x.writable(stored); err != nil {
			return err
		}
		if _, slot, _, err = s.find(key); err != nil {
			return err
		}
	}
	var buf [slotSize]byte
	copy(buf[:16], key[:])
	binary.LittleEndian.PutUint64(buf[16:24], seq)
	binary.LittleEndian.PutUint64(buf[24:32], uint64(stored.Unix()))
	if _, err := s.f.WriteAt(buf[:], headerSize+int64(slot)*slotSize); err != nil {
		return fmt.Errorf("idindex: write %s: %w", s.path, err)
	}
	s.count++
	if s.first.IsZero() || stored.Before(s.first) {
		s.first = stored
	}
	if stored.After(s.last) {
		s.last = stored
	}
	s.dirty = true
	return nil
}

// writable returns the segment that takes the next insert, sealing the
// current one when it is half full or older than a quarter of the window.
func (x *Index) writable(stored time.Time) (*segment, error) {
	size := x.opts.MinSlots
	if n := len(x.segs); n > 0 {
		cur := x.segs[n-1]
		full := cur.count >= cur.slots/2
		old := !cur.first.IsZero() && stored.Sub(cur.first) > x.opts.Window/4
		if !full && !old && !cur.sealed {
			return cur, nil
		}
		cur.sealed = true
		size = cur.slots
		switch {
		case full && size < x.opts.MaxSlots:
			size *= 2
		case !full && cur.count < cur.slots/8 && size > x.opts.MinSlots:
			size /= 2
		}
	}
	s, err := createSegment(filepath.Join(x.dir, fmt.Sprintf("%012d%s", x.next, segSuffix)), size)
	if err != nil {
		return nil, err
	}
	x.next++
	x.segs = append(x.segs, s)
	return s, nil
}

// Expire deletes the segments whose newest entry is older than the window.
// The newest segment is never deleted.
func (x *Index) Expire() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	cutoff := x.opts.Now().Add(-x.opts.Window)
	keep := x.segs[:0]
	for i, s := range x.segs {
		if i < len(x.segs)-1 && s.last.Before(cutoff) {
			_ = s.f.Close()
			if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("idindex: %w", err)
			}
			continue
		}
		keep = append(keep, s)
	}
	clear(x.segs[len(keep):])
	x.segs = keep
	return nil
}

// Checkpoint is how far the index is complete, as recorded by Commit.
type Checkpoint struct {
	// Log identifies the log the positions belong to (for example the
	// stream's creation time); a different log means a rebuild.
	Log string `json:"log"`
	// Seq is the log position through which every event is in the index.
	Seq uint64 `json:"seq"`
	// At is when the checkpoint was made.
	At time.Time `json:"at"`
	// Holes is how many positions inside the log held no message when
	// last asked: more at the next start means the log lost data
	// meanwhile.
	Holes uint64 `json:"holes,omitempty"`
}

// Commit makes everything inserted before it was called durable (fsync)
// and then records cp, so that after any crash the index holds at least
// what cp claims. Lookups and inserts go on while it syncs.
func (x *Index) Commit(cp Checkpoint) error {
	x.mu.Lock()
	var dirty []*segment
	for _, s := range x.segs {
		if !s.dirty {
			continue
		}
		if err := s.writeHeader(); err != nil {
			x.mu.Unlock()
			return err
		}
		s.dirty = false
		dirty = append(dirty, s)
	}
	x.mu.Unlock()
	for _, s := range dirty {
		// A segment expired meanwhile is closed; its entries are too old to
		// matter.
		if err := s.f.Sync(); err != nil && !errors.Is(err, os.ErrClosed) {
			x.mu.Lock()
			s.dirty = true
			x.mu.Unlock()
			return fmt.Errorf("idindex: sync %s: %w", s.path, err)
		}
	}
	b, _ := json.Marshal(cp)
	tmp := filepath.Join(x.dir, checkpointFile+".tmp")
	if err := writeFileSync(tmp, b); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(x.dir, checkpointFile)); err != nil {
		return fmt.Errorf("idindex: %w", err)
	}
	return syncDir(x.dir)
}

// syncDir makes renames and new files in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("idindex: %w", err)
	}
	defer func() { _ = d.Close() }() // read-only: nothing to lose
	if err := d.Sync(); err != nil {
		return fmt.Errorf("idindex: sync %s: %w", dir, err)
	}
	return nil
}

// Wipe deletes an index's files from dir (segments, checkpoint), for a
// rebuild after ErrCorrupt. The directory and its lock file stay.
func Wipe(dir string) error {
	names, err := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	if err != nil {
		return fmt.Errorf("idindex: %w", err)
	}
	names = append(names, filepath.Join(dir, checkpointFile), filepath.Join(dir, checkpointFile+".tmp"))
	for _, name := range names {
		if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("idindex: %w", err)
		}
	}
	return nil
}

// ReadCheckpoint returns the last committed checkpoint; ok is false when
// there is none (a new or reset index).
func (x *Index) ReadCheckpoint() (cp Checkpoint, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(x.dir, checkpointFile))
	if errors.Is(err, os.ErrNotExist) {
		return Checkpoint{}, false, nil
	}
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("idindex: %w", err)
	}
	cp, ok = parseCheckpoint(b)
	return cp, ok, nil
}

// parseCheckpoint reads a checkpoint file; a torn or foreign one is not ok
// (the index is then treated as unknown and rebuilt).
func parseCheckpoint(b []byte) (Checkpoint, bool) {
	var cp Checkpoint
	if err := json.Unmarshal(b, &cp); err != nil || cp.Log == "" {
		return Checkpoint{}, false
	}
	return cp, true
}

func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("idindex: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("idindex: write %s: %w", path, err)
	}
	return nil
}

// Stats describe the index for metrics and logs.
type Stats struct {
	Segments int
	Entries  uint64
	Bytes    int64 // file sizes (the files are sparse; disk use is at most this)
}

// Stats returns the current figures.
func (x *Index) Stats() Stats {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var st Stats
	for _, s := range x.segs {
		st.Segments++
		st.Entries += s.count
		st.Bytes += headerSize + int64(s.slots)*slotSize
	}
	return st
}

// header is a segment's first page: magic, then JSON.
type header struct {
	Slots uint64 `json:"slots"`
	Count uint64 `json:"count"`
	First int64  `json:"first_unix"`
	Last  int64  `json:"last_unix"`
}

func createSegment(path string, slots uint64) (*segment, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("idindex: create segment: %w", err)
	}
	// Truncate makes a sparse file: unwritten slots read as zeros (empty)
	// and take no disk until written.
	if err := f.Truncate(headerSize + int64(slots)*slotSize); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return nil, fmt.Errorf("idindex: size segment: %w", err)
	}
	s := &segment{f: f, path: path, slots: slots, dirty: true}
	// The header and the directory entry are synced at once, so an OS
	// crash cannot leave a file that Open refuses.
	if err := s.writeHeader(); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return nil, err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return nil, fmt.Errorf("idindex: sync segment: %w", err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return nil, err
	}
	return s, nil
}

func openSegment(path string) (*segment, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("idindex: open segment: %w", err)
	}
	buf := make([]byte, headerSize)
	_, rerr := f.ReadAt(buf, 0)
	info, serr := f.Stat()
	var h header
	if rerr == nil && serr == nil {
		h, rerr = parseHeader(buf, info.Size())
	}
	if rerr != nil || serr != nil {
		_ = f.Close()
		return nil, fmt.Errorf("%w: %s is not a segment of this version", ErrCorrupt, path)
	}
	s := &segment{f: f, path: path, slots: h.Slots, count: h.Count, sealed: true}
	if h.First != 0 {
		s.first = time.Unix(h.First, 0)
	}
	if h.Last != 0 {
		s.last = time.Unix(h.Last, 0)
	}
	return s, nil
}

// parseHeader reads a segment's first page, checking it against the
// file's size.
func parseHeader(page []byte, size int64) (header, error) {
	var h header
	body, ok := bytes.CutPrefix(page, []byte(magic))
	if !ok {
		return h, errors.New("no segment magic")
	}
	if err := json.Unmarshal(bytes.TrimRight(body, "\x00"), &h); err != nil {
		return h, err
	}
	if !isPow2(h.Slots) || h.Slots < probeChunk || h.Slots > 1<<40 || size != headerSize+int64(h.Slots)*slotSize {
		return h, fmt.Errorf("segment of %d slots does not match its size %d", h.Slots, size)
	}
	return h, nil
}

func (s *segment) writeHeader() error {
	h := header{Slots: s.slots, Count: s.count}
	if !s.first.IsZero() {
		h.First = s.first.Unix()
	}
	if !s.last.IsZero() {
		h.Last = s.last.Unix()
	}
	b, _ := json.Marshal(h)
	buf := make([]byte, headerSize)
	copy(buf, magic)
	copy(buf[len(magic):], b)
	if _, err := s.f.WriteAt(buf, 0); err != nil {
		return fmt.Errorf("idindex: write %s: %w", s.path, err)
	}
	return nil
}

// noSlot is find's answer for a key that is absent from a full table.
const noSlot = ^uint64(0)

// find probes for key with linear probing. It returns the entry when
// found, and otherwise the first empty slot (where key would go), or
// noSlot when the table has none.
func (s *segment) find(key Key) (e Entry, slot uint64, found bool, err error) {
	mask := s.slots - 1
	pos := key.hash() & mask
	var buf [probeChunk * slotSize]byte
	for probed := uint64(0); probed < s.slots; {
		// Read from pos to the end of its aligned chunk (wrapping at the
		// table's end comes naturally: chunks never straddle it).
		n := probeChunk - pos%probeChunk
		chunk := buf[:n*slotSize]
		if _, err := s.f.ReadAt(chunk, headerSize+int64(pos)*slotSize); err != nil {
			return Entry{}, 0, false, fmt.Errorf("idindex: read %s: %w", s.path, err)
		}
		for i := uint64(0); i < n; i++ {
			rec := chunk[i*slotSize : (i+1)*slotSize]
			seq := binary.LittleEndian.Uint64(rec[16:24])
			if seq == 0 {
				return Entry{}, pos + i, false, nil
			}
			if Key(rec[:16]) == key {
				return Entry{Seq: seq, Stored: time.Unix(int64(binary.LittleEndian.Uint64(rec[24:32])), 0)}, pos + i, true, nil
			}
		}
		probed += n
		pos = (pos + n) & mask
	}
	return Entry{}, noSlot, false, nil
}

// segNumber is a segment's number, from its file name (0 if foreign).
func segNumber(path string) uint64 {
	n, _ := strconv.ParseUint(strings.TrimSuffix(filepath.Base(path), segSuffix), 10, 64)
	return n
}
