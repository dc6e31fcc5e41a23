package system

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	soakDuration = flag.Duration("soak.duration", 6*time.Second, "how long TestSoak sends webhooks")
	soakRate     = flag.Int("soak.rate", 200, "webhooks per second TestSoak sends")
	soakReport   = flag.String("soak.report", "", "write TestSoak's figures as JSON to this file")
	soakGrowth   = flag.Float64("soak.max-growth", 0.2, "largest RSS growth (fraction) TestSoak accepts after warm-up, in runs of 2 minutes or more")
)

// rssKiB reads a process's resident set size from /proc: VmRSS, all of
// it, or RssAnon, its memory without the file pages it maps (the dedup
// index's segments, which are page cache the kernel can reclaim).
func rssKiB(pid int, field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return n
		}
	}
	return -1
}

// goroutines reads go_goroutines from /metrics.
func goroutines(t testing.TB, httpAddr string) int64 {
	req, _ := http.NewRequest(http.MethodGet, "http://"+httpAddr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "go_goroutines "); ok {
			n, _ := strconv.ParseFloat(rest, 64)
			return int64(n)
		}
	}
	t.Fatal("no go_goroutines in /metrics")
	return 0
}

// TestSoak sends a steady load with a live subscriber and samples the
// server's RSS and goroutine count. The long version (-soak.duration 10m)
// produces the figures in docs/reliability.md; any run fails if goroutines
// leak, and a run of 2 minutes or more fails if the peak of the anonymous
// RSS (the process's own memory, without the mapped index files) of the
// last 40% of the run exceeds that of the 40% before by more than
// -soak.max-growth.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary under load")
	}
	p := newProc(t, t.TempDir(), "")
	p.start()
	sub := &resumingSubscriber{seen: map[string]int{}}
	subCtx, stopSub := context.WithCancel(context.Background())
	defer stopSub()
	go sub.run(subCtx, []string{p.grpcAddr})

	res := &loadResult{ackedIDs: map[string]bool{}}
	ctx, cancel := context.WithTimeout(context.Background(), *soakDuration)
	defer cancel()
	done := make(chan struct{})
	go func() { sendLoad(ctx, []string{"http://" + p.httpAddr}, *soakRate, res); close(done) }()

	type sample struct {
		At         float64 `json:"t_s"`
		RSSKiB     int64   `json:"rss_kib"`
		AnonKiB    int64   `json:"rss_anon_kib"`
		Goroutines int64   `json:"goroutines"`
	}
	var samples []sample
	start := time.Now()
	interval := max(*soakDuration/20, time.Second)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for running := true; running; {
		select {
		case <-done:
			running = false
		case <-tick.C:
		}
		pid := p.cmd.Process.Pid
		samples = append(samples, sample{time.Since(start).Seconds(), rssKiB(pid, "VmRSS"), rssKiB(pid, "RssAnon"), goroutines(t, p.httpAddr)})
	}
	missing := sub.waitFor(res.ackedIDs, 30*time.Second)
	// The first 20% is warm-up: caches, pools and JetStream's dedup guard
	// window (1 minute) fill. RSS then swings with each GC cycle, so the
	// trend is judged on peaks: the highest sample of the later half of
	// the rest against the highest of the earlier half.
	// The index's mapped segments count in VmRSS and grow with the dedup
	// window as its files do, so the trend is judged on RssAnon.
	rss, anon := func(s sample) int64 { return s.RSSKiB }, func(s sample) int64 { return s.AnonKiB }
	warm := samples[len(samples)/5:]
	first, last := warm[0], samples[len(samples)-1]
	early, late := maxRSS(warm[:len(warm)/2], anon), maxRSS(warm[len(warm)/2:], anon)
	report := map[string]any{
		"duration_s": soakDuration.Seconds(), "rate_per_s": *soakRate, "acked": res.acked.Load(),
		"non_2xx": res.failed.Load(), "no_answer": res.refused.Load(), "missing_from_subscriber": missing,
		"rss_start_kib": first.RSSKiB, "rss_end_kib": last.RSSKiB, "rss_max_kib": maxRSS(samples, rss),
		"rss_anon_start_kib": first.AnonKiB, "rss_anon_end_kib": last.AnonKiB,
		"rss_anon_peak_early_kib": early, "rss_anon_peak_late_kib": late,
		"goroutines_start": first.Goroutines, "goroutines_end": last.Goroutines, "samples": samples,
	}
	b, _ := json.Marshal(report)
	t.Logf("soak: %s", b)
	if *soakReport != "" {
		_ = os.WriteFile(*soakReport, b, 0o644)
	}
	if missing != 0 || res.failed.Load() != 0 || res.refused.Load() != 0 {
		t.Errorf("under steady load: %d non-2xx, %d unanswered, subscriber missed %d", res.failed.Load(), res.refused.Load(), missing)
	}
	if last.Goroutines > first.Goroutines+50 {
		t.Errorf("goroutines grew from %d to %d", first.Goroutines, last.Goroutines)
	}
	// A short run is all warm-up, so only long ones judge the trend.
	if limit := early + int64(float64(early)**soakGrowth); *soakDuration >= 2*time.Minute && late > limit {
		t.Errorf("anonymous RSS peaks grew from %d KiB to %d KiB (limit %d KiB); samples: %v", early, late, limit, samples)
	}
}

func maxRSS[S any](samples []S, f func(S) int64) int64 {
	var m int64
	for _, s := range samples {
		m = max(m, f(s))
	}
	return m
}
