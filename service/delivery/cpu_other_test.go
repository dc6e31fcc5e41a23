//go:build !unix

package delivery

import (
	"testing"
	"time"
)

// processCPU is not measured off Unix: the benchmark reports 0.
func processCPU(testing.TB) time.Duration { return 0 }
