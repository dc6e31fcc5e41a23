//go:build unix

package idindex

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockDir takes an exclusive advisory lock on dir, so that two processes
// (say, two replicas given the same index_dir) cannot write one index.
func lockDir(dir string) (*os.File, error) {
	f, err := openLockFile(dir)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("idindex: %s is in use by another process: another hookstream serve with the same data dir (or, with an external NATS, another replica given the same index_dir; each needs its own)", dir)
		}
		return nil, fmt.Errorf("idindex: lock %s: %w", dir, err)
	}
	return f, nil
}
