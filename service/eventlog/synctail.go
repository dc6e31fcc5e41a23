package eventlog

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// What a shared sync writes to disk.
//
// A syncfs(2) covers everything, but also flushes whatever else is dirty
// on the file system: the dedup index, the attempt records, other
// programs' files; measured in the harness, that cost a fifth of ingest
// with fsync: always. So a sync usually does less: JetStream appends each
// stream's messages to its last block file (<n>.blk in the stream's msgs
// directory), and a write that waits was appended to the last block of
// one of the streams whose writes wait (the events, the quarantine bucket,
// and what the delivery store registers), so an fdatasync(2) of each of
// those last blocks that grew since its last sync holds it. Anything else
// the store did meanwhile (a new block, a block compacted and renamed
// into place, a purge that moved the directory, a stream with no block
// yet) makes that round a syncfs, which covers the new files and
// directory entries too, and the next round starts from the new last
// block.

// streamTails tracks the last block of each synced stream.
type streamTails struct {
	root string // the store's streams of the account: <data>/jetstream/$G/streams

	mu    sync.Mutex
	tails map[string]*tailBlock // by stream name
	// fdatasync syncs one block (tests make it fail).
	fdatasync func(*os.File) error
	// full counts the rounds that fell back to syncfs, datasyncs the
	// blocks synced on their own (tests).
	full, datasyncs uint64
}

// tailBlock is the last block file of one stream, open for syncing.
type tailBlock struct {
	dir string // the stream's msgs directory
	idx uint64 // the block's number
	f   *os.File
	// synced is the block's size at its last sync: JetStream only appends
	// to a block (a rewrite is a new file, renamed into place), so while
	// the size is the same there is nothing new to sync, and the sync (a
	// cache flush of the device, even for a clean file) is skipped.
	synced int64
}

// embeddedAccount is the directory of the embedded server's one account.
const embeddedAccount = "$G"

func newStreamTails(dataDir string) *streamTails {
	return &streamTails{root: filepath.Join(dataDir, "jetstream", embeddedAccount, "streams"), tails: map[string]*tailBlock{}, fdatasync: fdatasync}
}

// add makes syncs cover streams too.
func (t *streamTails) add(streams ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, name := range streams {
		if t.tails[name] == nil {
			t.tails[name] = &tailBlock{dir: filepath.Join(t.root, name, "msgs")}
		}
	}
}

// sync writes to disk the last blocks of the tracked streams that need
// it, or everything (full, with syncfs of dir) when one of those streams'
// store has changed shape since the last round. A stream not needed is
// not looked at: a change of its shape is found the next time it is.
func (t *streamTails) sync(need func(stream string) bool, full func() error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	settled := true
	for name, b := range t.tails {
		if !need(name) {
			continue
		}
		ok, synced, err := b.datasync(t.fdatasync)
		if err != nil {
			t.forget()
			return err
		}
		if synced {
			t.datasyncs++
		}
		settled = settled && ok
	}
	if settled {
		return nil
	}
	t.full++
	if err := full(); err != nil {
		t.forget()
		return err
	}
	return nil
}

// forget follows a failed round: what it left on disk is not known (a
// block opened this round counted on the syncfs that did not run, to cover
// it and its directory entry), so every stream's last block is opened
// afresh next round, which makes that round a syncfs.
func (t *streamTails) forget() {
	for _, b := range t.tails {
		b.drop()
	}
}

// close closes the open block files.
func (t *streamTails) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, b := range t.tails {
		b.drop()
	}
}

// datasync fdatasyncs the block that is still the stream's last one, if it
// grew since its last sync (synced says whether it did). It reports
// settled false (and syncs nothing) when that block cannot be known: no
// block open yet, a newer block, or the file at the block's name is another
// one (compacted and renamed, or moved by a purge); the block to follow
// is then opened for the next round, and the caller syncs everything. A
// stream with no block at all has had nothing written that waits (a write
// before this round would have made one): there is nothing to sync.
func (b *tailBlock) datasync(fdatasync func(*os.File) error) (settled, synced bool, err error) {
	if b.f != nil {
		if size, ok := b.unchanged(); ok {
			if size == b.synced {
				return true, false, nil
			}
			if err := fdatasync(b.f); err != nil {
				return false, false, fmt.Errorf("sync %s: %w", b.f.Name(), err)
			}
			b.synced = size
			return true, true, nil
		}
	}
	b.drop()
	idx, ok, err := lastBlock(b.dir)
	switch {
	case err != nil:
		return false, false, nil // unreadable now: syncfs covers it
	case !ok:
		return true, false, nil
	}
	f, err := os.Open(blockPath(b.dir, idx))
	if err != nil {
		return false, false, nil // removed meanwhile: found again next round
	}
	// The syncfs this round falls back to covers what it holds so far.
	b.f, b.idx, b.synced = f, idx, -1
	if st, err := f.Stat(); err == nil {
		b.synced = st.Size()
	}
	return false, false, nil
}

// unchanged says whether b.f is still the stream's last block (the file
// at its name, with no block after it), and its size now.
func (b *tailBlock) unchanged() (int64, bool) {
	if _, err := os.Lstat(blockPath(b.dir, b.idx+1)); !errors.Is(err, fs.ErrNotExist) {
		return 0, false
	}
	named, err := os.Stat(blockPath(b.dir, b.idx))
	if err != nil {
		return 0, false
	}
	open, err := b.f.Stat()
	if err != nil || !os.SameFile(named, open) {
		return 0, false
	}
	return open.Size(), true
}

func (b *tailBlock) drop() {
	if b.f != nil {
		_ = b.f.Close()
		b.f = nil
	}
}

func blockPath(dir string, idx uint64) string {
	return filepath.Join(dir, strconv.FormatUint(idx, 10)+".blk")
}

// lastBlock finds the highest-numbered block in dir; ok is false when
// there is none (or no dir yet).
func lastBlock(dir string) (idx uint64, ok bool, err error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	for _, e := range ents {
		n, found := strings.CutSuffix(e.Name(), ".blk")
		if !found {
			continue
		}
		if i, err := strconv.ParseUint(n, 10, 64); err == nil && (!ok || i > idx) {
			idx, ok = i, true
		}
	}
	return idx, ok, nil
}
