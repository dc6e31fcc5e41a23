package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// clockTick is the unit of utime and stime in /proc/<pid>/stat: USER_HZ,
// which Linux fixes at 100 for user space on every architecture we run.
const clockTick = 10 * time.Millisecond

// cpu returns the CPU time (user and system) the server's process has used
// so far, read from /proc. It is false in process (-inprocess shares the
// harness's process) and where /proc is missing.
func (s *server) cpu() (time.Duration, bool) {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0, false
	}
	return procCPU(s.cmd.Process.Pid)
}

func procCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name (field 2) is in parentheses and may hold spaces;
	// the fields after its closing parenthesis start with field 3, state.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(string(f[11]), 10, 64) // field 14
	stime, err2 := strconv.ParseInt(string(f[12]), 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * clockTick, true
}

// cpuMeter measures a server's CPU time over a window of work.
type cpuMeter struct {
	s     *server
	start time.Duration
	ok    bool
}

func meterCPU(s *server) *cpuMeter {
	m := &cpuMeter{s: s}
	m.start, m.ok = s.cpu()
	return m
}

// per returns the CPU time used since meterCPU divided by n units of work
// (requests, events), or false when it could not be read.
func (m *cpuMeter) per(n int64) (time.Duration, bool) {
	end, ok := m.s.cpu()
	if !m.ok || !ok || n <= 0 {
		return 0, false
	}
	return (end - m.start) / time.Duration(n), true
}

// cpuCells formats per-unit CPU times of the two sides for a table row:
// µs each and their ratio, or dashes when either is unknown.
func cpuCells(ref, hs []time.Duration) (string, string, string) {
	if len(ref) == 0 || len(hs) == 0 {
		return "—", "—", "—"
	}
	var ratios, rs, hss []float64
	for i := range min(len(ref), len(hs)) {
		rs, hss = append(rs, us(ref[i])), append(hss, us(hs[i]))
		ratios = append(ratios, float64(hs[i])/float64(ref[i]))
	}
	return fmt.Sprintf("%.1f", median(rs)), fmt.Sprintf("%.1f", median(hss)), fmt.Sprintf("%.2f×", median(ratios))
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
