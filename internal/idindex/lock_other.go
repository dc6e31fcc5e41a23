//go:build !unix

package idindex

import "os"

// lockDir only creates the lock file where advisory locks are not
// available; keeping index dirs apart is then up to the operator.
func lockDir(dir string) (*os.File, error) { return openLockFile(dir) }
