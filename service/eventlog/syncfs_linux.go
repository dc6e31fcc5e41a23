package eventlog

import (
	"os"

	"golang.org/x/sys/unix"
)

// canSyncFS: Linux has syncfs(2).
const canSyncFS = true

// syncFS writes the dirty data and metadata of f's file system to disk.
func syncFS(f *os.File) error {
	for {
		err := unix.Syncfs(int(f.Fd()))
		if err != unix.EINTR {
			return err
		}
	}
}

// fdatasync writes f's data, and the metadata needed to read it back, to
// disk.
func fdatasync(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if err != unix.EINTR {
			return err
		}
	}
}
