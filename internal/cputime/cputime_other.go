//go:build !unix

package cputime

import (
	"errors"
	"time"
)

// Process is not available off Unix.
func Process() (time.Duration, error) {
	return 0, errors.New("cputime: not measured on this system")
}
