// Package idindex is an on-disk map from event id to log position that
// remembers each id for a time window while keeping the process's memory
// flat, however many events the window holds.
//
// JetStream's own dedup keeps every message id of its window in memory
// (measured: about 170 bytes of heap, 260 bytes of RSS per event), so a
// window of hours at a steady rate grows the process by gigabytes. This
// index keeps the ids in files: the kernel's page cache holds them, and
// only a fixed header per file lives in the heap. On Linux the files are
// mapped into memory (shared, so they count in VmRSS but not in RssAnon,
// and the kernel reclaims them like any page cache), which spares a
// system call per probe and per insert; elsewhere they are read and
// written with pread and pwrite.
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
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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
		s.close()
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
		s.close()
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
	var rec [slotSize]byte
	copy(rec[:16], key[:])
	binary.LittleEndian.PutUint64(rec[16:24], seq)
	binary.LittleEndian.PutUint64(rec[24:32], uint64(stored.Unix()))
	if err := s.put(slot, &rec); err != nil {
		return err
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
			s.close()
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
