package idindex

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

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
	return ReadCheckpoint(x.dir)
}

// ReadCheckpoint returns the last checkpoint committed to the index in
// dir, without opening the index; ok is false when there is none (no
// index, or a new or reset one).
func ReadCheckpoint(dir string) (cp Checkpoint, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, checkpointFile))
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
