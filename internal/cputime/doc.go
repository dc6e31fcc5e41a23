// Package cputime reads the CPU time the process has used, for benchmarks
// that report CPU per operation: on a machine whose speed drifts, or with
// work spread over goroutines that ns/op does not see, it is the figure
// that compares two builds.
package cputime
