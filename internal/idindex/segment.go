package idindex

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// segment is one hash table file. Only its header fields live in the
// heap; on Linux its slots are mapped (table), elsewhere read and written
// with pread and pwrite.
type segment struct {
	f     *os.File
	table []byte // the slots, mapped; nil where they are not
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
	if s.table, err = mapTable(f, slots); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return nil, err
	}
	// The header and the directory entry are synced at once, so an OS
	// crash cannot leave a file that Open refuses.
	err = s.writeHeader()
	if err == nil {
		if err = f.Sync(); err != nil {
			err = fmt.Errorf("idindex: sync segment: %w", err)
		}
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		s.close()
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
	if s.table, err = mapTable(f, h.Slots); err != nil {
		_ = f.Close()
		return nil, err
	}
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
	if s.table != nil {
		defer s.faults(&err, debug.SetPanicOnFault(true))
	}
	mask := s.slots - 1
	pos := key.hash() & mask
	var buf [probeChunk * slotSize]byte
	for probed := uint64(0); probed < s.slots; {
		// Look from pos to the end of its aligned chunk (wrapping at the
		// table's end comes naturally: chunks never straddle it).
		n := probeChunk - pos%probeChunk
		var chunk []byte
		if s.table != nil {
			chunk = s.table[pos*slotSize : (pos+n)*slotSize]
		} else {
			chunk = buf[:n*slotSize]
			if _, err := s.f.ReadAt(chunk, headerSize+int64(pos)*slotSize); err != nil {
				return Entry{}, 0, false, fmt.Errorf("idindex: read %s: %w", s.path, err)
			}
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

// put writes one slot.
func (s *segment) put(slot uint64, rec *[slotSize]byte) (err error) {
	if s.table == nil {
		if _, err := s.f.WriteAt(rec[:], headerSize+int64(slot)*slotSize); err != nil {
			return fmt.Errorf("idindex: write %s: %w", s.path, err)
		}
		return nil
	}
	defer s.faults(&err, debug.SetPanicOnFault(true))
	copy(s.table[slot*slotSize:], rec[:])
	return nil
}

// faults turns a fault while touching the mapping into an error: the file
// under it failed to read or write (an I/O error, a full disk under a
// sparse file, a file cut short by someone else), which pread and pwrite
// would have reported. Each method that touches the mapping turns faults
// into panics and defers it, with the setting to restore:
//
//	defer s.faults(&err, debug.SetPanicOnFault(true))
func (s *segment) faults(err *error, restore bool) {
	defer debug.SetPanicOnFault(restore)
	r := recover()
	if r == nil {
		return
	}
	if f, ok := r.(interface{ Addr() uintptr }); ok {
		*err = fmt.Errorf("idindex: %s: the file under its mapping failed (fault at %#x)", s.path, f.Addr())
		return
	}
	panic(r)
}

// close unmaps and closes the segment's file, without syncing it.
func (s *segment) close() {
	if s.table != nil {
		unmapTable(s.table)
		s.table = nil
	}
	_ = s.f.Close()
}

// segNumber is a segment's number, from its file name (0 if foreign).
func segNumber(path string) uint64 {
	n, _ := strconv.ParseUint(strings.TrimSuffix(filepath.Base(path), segSuffix), 10, 64)
	return n
}
