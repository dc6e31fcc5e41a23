//go:build !linux

package eventlog

import "os"

// canSyncFS: no syncfs(2) here; fsync: always falls back to atomic
// batches (group commit) or a sync per write.
const canSyncFS = false

func syncFS(*os.File) error { return errNoSyncFS }

func fdatasync(f *os.File) error { return f.Sync() }
