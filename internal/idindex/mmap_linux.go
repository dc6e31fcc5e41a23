package idindex

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// mapTable maps a segment file's slots into memory, so that probes and
// inserts touch the page cache without a system call each. The mapping is
// shared: what is written to it is the file's content, and fsync of the
// file makes it durable as it does pwrite's.
func mapTable(f *os.File, slots uint64) ([]byte, error) {
	m, err := unix.Mmap(int(f.Fd()), headerSize, int(slots*slotSize), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("idindex: map segment: %w", err)
	}
	return m, nil
}

func unmapTable(m []byte) { _ = unix.Munmap(m) }
