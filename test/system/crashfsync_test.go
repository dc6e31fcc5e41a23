package system

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// TestCrashUnderLoadFsyncAlways SIGKILLs the server (embedded JetStream,
// log.fsync: always) twice while up to 64 webhooks are in flight at once,
// with each way of sharing the disk's syncs: shared syncs (group_commit:
// auto, on Linux) and atomic batches (group_commit: on). Every
// acknowledged event must be in the log, once, after the restarts; a
// redelivery of one must be a duplicate; and writes must really have
// shared syncs or batches, or the test did not test them.
func TestCrashUnderLoadFsyncAlways(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary under load")
	}
	for _, c := range []struct {
		name, config string
		// shared reads what the mode shares from /metrics: writes and
		// the syncs or batches that held them.
		shared func(p *proc, t *testing.T) (held, writes int64)
	}{
		{"shared-sync", "  fsync: always\n", (*proc).sharedSyncs},
		{"batches", "  fsync: always\n  group_commit: on\n", (*proc).appendBatches},
	} {
		t.Run(c.name, func(t *testing.T) {
			crashUnderLoadFsyncAlways(t, c.config, c.shared)
		})
	}
}

func crashUnderLoadFsyncAlways(t *testing.T, config string, shared func(p *proc, t *testing.T) (held, writes int64)) {
	p := newProc(t, t.TempDir(), config)
	p.start()
	res := &loadResult{ackedIDs: map[string]bool{}}
	const duration, kills = 6 * time.Second, 2
	loadCtx, stopLoad := context.WithTimeout(context.Background(), duration)
	defer stopLoad()
	loadDone := make(chan struct{})
	// Far more than fsync: always serves one append at a time: the 64
	// requests in flight queue up behind each write.
	go func() { sendLoad(loadCtx, []string{"http://" + p.httpAddr}, 5000, res); close(loadDone) }()
	var held, writes int64
	for range kills {
		select {
		case <-time.After(duration / (kills + 1)):
		case <-loadDone:
		}
		h, w := shared(p, t)
		held, writes = held+h, writes+w
		p.kill()
		p.start()
	}
	<-loadDone
	h, w := shared(p, t)
	held, writes = held+h, writes+w
	retried := retryLoad(t, "http://"+p.httpAddr, res)
	v := verify(t, p.grpcAddr, res, &resumingSubscriber{seen: map[string]int{}})
	t.Logf("fsync always, crash under load: %d sent, %d acked, %d unanswered, %d non-2xx, %d skipped by the generator; "+
		"%d syncs or batches held %d writes; retried %d unanswered (%d already stored), redelivered %d acked",
		res.sent.Load(), res.acked.Load(), res.refused.Load(), res.failed.Load(), res.skipped.Load(),
		held, writes, retried.unanswered, retried.unansweredDup, retried.acked)
	if v.lost != 0 || v.storedTwice != 0 {
		t.Errorf("lost %d acknowledged events, stored %d twice", v.lost, v.storedTwice)
	}
	if res.acked.Load() == 0 {
		t.Error("nothing was acknowledged")
	}
	if held == 0 || writes <= held {
		t.Errorf("%d syncs or batches held %d writes: no write shared one", held, writes)
	}
}

// sharedSyncs reads the shared-sync counters from /metrics: syncs, and
// the writes that waited for them.
func (p *proc) sharedSyncs(t *testing.T) (syncs, writes int64) {
	t.Helper()
	m := p.metrics(t)
	return m("hookstream_log_syncs_total"), m("hookstream_log_synced_writes_total")
}

// appendBatches reads the group commit histogram from /metrics: writes
// to the log and the appends they held.
func (p *proc) appendBatches(t *testing.T) (writes, appends int64) {
	t.Helper()
	m := p.metrics(t)
	return m("hookstream_log_append_batch_size_count"), m("hookstream_log_append_batch_size_sum")
}

// metrics reads /metrics once; the function it returns gives the value of
// an unlabelled series.
func (p *proc) metrics(t *testing.T) func(name string) int64 {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+p.httpAddr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("/metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return func(name string) int64 {
		t.Helper()
		m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindSubmatch(b)
		if m == nil {
			t.Fatalf("/metrics lacks %s", name)
		}
		f, err := strconv.ParseFloat(string(m[1]), 64)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return int64(f)
	}
}
