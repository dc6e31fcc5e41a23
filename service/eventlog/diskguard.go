package eventlog

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// The disk guard keeps the log's file system from filling up.
//
// When the embedded server's store cannot write (ENOSPC), nats-server
// disables JetStream until the process restarts: every append then waits
// out the write timeout and fails, and freeing space does not bring it
// back. So writes that grow the log (events and quarantine entries) are
// refused at once while the file systems of the data dir and the dedup
// index have less than Config.MinFreeDisk free, and taken again as soon as
// there is room; the first refusal and the recovery are logged, naming the
// directory. Delivery's records and endpoint changes are not refused:
// they are small, bounded by their streams' caps, and what little they
// write is what the reserve is for.

// diskCheckEvery is how often the free space is looked at again; in
// between, writes go by the latest look.
const diskCheckEvery = time.Second

// diskGuard is safe for concurrent use.
type diskGuard struct {
	dirs   []string
	min    uint64
	free   func(dir string) (uint64, error)
	logger *slog.Logger

	checked  atomic.Int64 // unix nanoseconds of the latest look
	low      atomic.Pointer[diskLow]
	readings atomic.Pointer[[]DiskReading] // of the latest look
	mu       sync.Mutex                    // one look at a time
}

// DiskReading is the free space of the file system of one of the log's
// directories, at the latest look.
type DiskReading struct {
	Dir  string
	Free uint64
}

// diskLow is what the latest look found short of room.
type diskLow struct {
	dir  string
	free uint64
}

func newDiskGuard(dirs []string, minFree uint64, logger *slog.Logger) *diskGuard {
	return &diskGuard{dirs: dirs, min: minFree, free: freeBytes, logger: logger}
}

// short is what the latest look found short of room, nil while every
// directory had MinFreeDisk free; the look is made again when it is older
// than diskCheckEvery.
func (g *diskGuard) short() *diskLow {
	if g == nil || g.min == 0 {
		return nil
	}
	if now := time.Now().UnixNano(); now-g.checked.Load() >= int64(diskCheckEvery) {
		g.look(now)
	}
	return g.low.Load()
}

// err is nil while there is room; otherwise an ErrDiskShort that says
// which directory is short, by how much.
func (g *diskGuard) err() error {
	if low := g.short(); low != nil {
		return fmt.Errorf("%w: %s", ErrDiskShort, g.describe(low))
	}
	return nil
}

func (g *diskGuard) describe(low *diskLow) string {
	return fmt.Sprintf("the file system of %s has %s free, less than log.min_free_disk (%s): events are refused until there is room",
		low.dir, formatBytes(low.free), formatBytes(g.min))
}

// look measures the free space of every directory, unless another caller
// just did.
func (g *diskGuard) look(now int64) {
	if !g.mu.TryLock() {
		return // another caller is looking; go by the latest look
	}
	defer g.mu.Unlock()
	if now-g.checked.Load() < int64(diskCheckEvery) {
		return
	}
	var low *diskLow
	readings := make([]DiskReading, 0, len(g.dirs))
	for _, dir := range g.dirs {
		free, err := g.free(dir)
		if err != nil {
			// A file system that cannot say is not taken for full: the
			// store's own errors still stop the writes.
			continue
		}
		readings = append(readings, DiskReading{Dir: dir, Free: free})
		if free < g.min && (low == nil || free < low.free) {
			low = &diskLow{dir: dir, free: free}
		}
	}
	was := g.low.Swap(low)
	g.readings.Store(&readings)
	g.checked.Store(now)
	switch {
	case low != nil && was == nil:
		g.logger.Error("disk nearly full: "+g.describe(low)+"; free space there or move log.data_dir (see README, Durability)",
			"dir", low.dir, "free_bytes", low.free, "min_free_bytes", g.min)
	case low == nil && was != nil:
		g.logger.Info("disk has room again: events are taken", "dir", was.dir, "min_free_bytes", g.min)
	}
}

// formatBytes writes n in the largest binary unit that keeps it at 1 or
// more, with one decimal.
func formatBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
