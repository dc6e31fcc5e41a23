//go:build !linux

package idindex

import "os"

// mapTable maps nothing elsewhere than on Linux: segments are read and
// written with pread and pwrite (fsync of a file is known to cover writes
// through a shared mapping only on Linux).
func mapTable(*os.File, uint64) ([]byte, error) { return nil, nil }

func unmapTable([]byte) {}
