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
// log.fsync: always, so group commit is on) twice while up to 64 webhooks
// are in flight at once. Every acknowledged event must be in the log,
// once, after the restarts; a redelivery of one must be a duplicate; and
// the appends must really have shared writes (batches of more than one),
// or the test did not test group commit.
func TestCrashUnderLoadFsyncAlways(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary under load")
	}
	p := newProc(t, t.TempDir(), "  fsync: always\n")
	p.start()
	res := &loadResult{ackedIDs: map[string]bool{}}
	const duration, kills = 6 * time.Second, 2
	loadCtx, stopLoad := context.WithTimeout(context.Background(), duration)
	defer stopLoad()
	loadDone := make(chan struct{})
	// Far more than fsync: always serves one append at a time: the 64
	// requests in flight queue up behind each write.
	go func() { sendLoad(loadCtx, []string{"http://" + p.httpAddr}, 5000, res); close(loadDone) }()
	var writes, appends int64
	for range kills {
		select {
		case <-time.After(duration / (kills + 1)):
		case <-loadDone:
		}
		w, a := p.appendBatches(t)
		writes, appends = writes+w, appends+a
		p.kill()
		p.start()
	}
	<-loadDone
	w, a := p.appendBatches(t)
	writes, appends = writes+w, appends+a
	retried := retryLoad(t, "http://"+p.httpAddr, res)
	v := verify(t, p.grpcAddr, res, &resumingSubscriber{seen: map[string]int{}})
	t.Logf("fsync always, crash under load: %d sent, %d acked, %d unanswered, %d non-2xx, %d skipped by the generator; "+
		"%d writes held %d appends; retried %d unanswered (%d already stored), redelivered %d acked",
		res.sent.Load(), res.acked.Load(), res.refused.Load(), res.failed.Load(), res.skipped.Load(),
		writes, appends, retried.unanswered, retried.unansweredDup, retried.acked)
	if v.lost != 0 || v.storedTwice != 0 {
		t.Errorf("lost %d acknowledged events, stored %d twice", v.lost, v.storedTwice)
	}
	if res.acked.Load() == 0 {
		t.Error("nothing was acknowledged")
	}
	if appends <= writes {
		t.Errorf("%d writes held %d appends: no append shared a write", writes, appends)
	}
}

// appendBatches reads the group commit histogram from /metrics: writes
// to the log and the appends they held.
func (p *proc) appendBatches(t *testing.T) (writes, appends int64) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+p.httpAddr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("/metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	num := func(name string) int64 {
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
	return num("hookstream_log_append_batch_size_count"), num("hookstream_log_append_batch_size_sum")
}
