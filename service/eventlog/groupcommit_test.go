package eventlog

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/internal/cputime"
	"github.com/hookstream/hookstream/internal/natstest"
)

// holdCommitter makes l's committer wait, before taking its next write
// from the queue, until the returned release is called (once).
func holdCommitter(t *testing.T, l *Log) (release func()) {
	t.Helper()
	if l.group == nil {
		t.Fatal("group commit is off")
	}
	hold := make(chan struct{})
	var once, rel sync.Once
	wait := func() { once.Do(func() { <-hold }) }
	l.group.beforeWrite.Store(&wait)
	release = func() { rel.Do(func() { close(hold) }) }
	t.Cleanup(release)
	return release
}

// waitQueued waits until l's committer holds n appends.
func waitQueued(t *testing.T, l *Log, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l.group.mu.Lock()
		got := len(l.group.queue)
		l.group.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d appends queued, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// checkStored reads seq back and checks it holds ev.
func checkStored(t *testing.T, l *Log, seq uint64, ev *hookstreamv1.Event) {
	t.Helper()
	st, err := l.At(context.Background(), seq)
	if err != nil {
		t.Fatalf("At(%d): %v", seq, err)
	}
	got, err := st.Decoded()
	if err != nil {
		t.Fatalf("decode %d: %v", seq, err)
	}
	if got.GetId() != ev.GetId() {
		t.Fatalf("position %d holds %s, want %s", seq, got.GetId(), ev.GetId())
	}
}

func TestGroupCommitMode(t *testing.T) {
	for _, c := range []struct {
		cfg          Config
		batch, share bool
	}{
		// auto: shared syncs where syncfs exists, batches elsewhere.
		{Config{SyncAlways: true}, !canSyncFS, canSyncFS},
		{Config{}, false, false},
		{Config{SyncAlways: true, URL: "nats://x"}, false, false},
		{Config{SyncAlways: true, GroupCommit: GroupCommitOff}, false, false},
		{Config{SyncAlways: true, GroupCommit: GroupCommitOn}, true, false},
		{Config{GroupCommit: GroupCommitOn}, true, false},
		{Config{URL: "nats://x", GroupCommit: GroupCommitOn}, true, false},
	} {
		if got := c.cfg.groupCommit(); got != c.batch {
			t.Errorf("%+v: batches %v, want %v", c.cfg, got, c.batch)
		}
		if got := c.cfg.sharedSync(); got != c.share {
			t.Errorf("%+v: shared sync %v, want %v", c.cfg, got, c.share)
		}
	}
	l := openLog(t, Config{DataDir: t.TempDir()})
	if st := l.AppendStats(); l.group != nil || l.syncer != nil || st.GroupCommit || st.SharedSync {
		t.Fatal("group commit is on with fsync interval")
	}
}

// TestGroupCommitBatchesConcurrentAppends: 64 appends that arrive while a
// write is in flight go to the log as one atomic batch, with fsync always,
// and each caller gets its own position.
func TestGroupCommitBatchesConcurrentAppends(t *testing.T) {
	l := openLog(t, Config{DataDir: t.TempDir(), SyncAlways: true, GroupCommit: GroupCommitOn})
	if l.group == nil {
		t.Fatal("group commit is off with fsync always")
	}
	// Idle: a lone append is a plain publish.
	first := mustAppend(t, l, event(0))
	checkStored(t, l, first.Seq, event(0))

	const n = 64
	got := appendQueued(t, l, 1, n)
	seen := map[uint64]int{}
	for i := range n {
		if j, ok := seen[got[i].Seq]; ok {
			t.Fatalf("appends %d and %d both got position %d", j+1, i+1, got[i].Seq)
		}
		seen[got[i].Seq] = i
	}
	if last := lastSeq(t, l); last != first.Seq+n {
		t.Fatalf("log ends at %d, want %d", last, first.Seq+n)
	}
	st := l.AppendStats()
	if !st.GroupCommit || st.Writes != 2 || st.Appends != n+1 || st.Failed != 0 {
		t.Fatalf("stats %+v, want 2 writes (a lone append and one batch of %d)", st, n)
	}
	if st.Buckets[1] != 1 || st.Buckets[32] != 1 || st.Buckets[64] != 2 {
		t.Fatalf("batch size buckets %v", st.Buckets)
	}
	// The dedup index learns batched events like any other.
	waitIndexed(t, l, first.Seq+n)
	time.Sleep(3 * guard)
	for i := range n {
		if app := mustAppend(t, l, event(i+1)); !app.Duplicate || app.Seq != got[i].Seq {
			t.Fatalf("retry of %d = %+v, want duplicate of %d", i+1, app, got[i].Seq)
		}
	}
}

// TestGroupCommitDuplicateInBatch: a batch that holds a copy of an event
// already in the log fails as a whole; its appends are then published one
// by one, so the copy gets the original's position and the others are
// stored.
func TestGroupCommitDuplicateInBatch(t *testing.T) {
	// JetStream's dedup answers the copies here: its window must outlast
	// the test on a slow machine.
	l := openLog(t, Config{DataDir: t.TempDir(), SyncAlways: true, GroupCommit: GroupCommitOn, GuardWindow: time.Minute})
	orig := mustAppend(t, l, event(1))

	release := holdCommitter(t, l)
	var evs []*hookstreamv1.Event
	for i := range groupMinBatch {
		if i == 2 {
			evs = append(evs, event(1))
		}
		evs = append(evs, event(i+2))
	}
	got := make([]Appended, len(evs))
	errs := make([]error, len(evs))
	var wg sync.WaitGroup
	for i, ev := range evs {
		wg.Go(func() {
			// Straight to the writer: the index, which would answer the
			// copy before the log is asked, may have seen the original.
			got[i], errs[i] = writeEvent(t, l, ev)
		})
	}
	waitQueued(t, l, len(evs))
	release()
	wg.Wait()
	for i, ev := range evs {
		if errs[i] != nil {
			t.Fatalf("append %s: %v", ev.GetId(), errs[i])
		}
		if ev.GetId() == event(1).GetId() {
			if !got[i].Duplicate || got[i].Seq != orig.Seq {
				t.Fatalf("copy = %+v, want duplicate of %d", got[i], orig.Seq)
			}
			continue
		}
		if got[i].Duplicate {
			t.Fatalf("%s reported a duplicate", ev.GetId())
		}
		checkStored(t, l, got[i].Seq, ev)
	}
	if last := lastSeq(t, l); last != orig.Seq+groupMinBatch {
		t.Fatalf("log ends at %d, want %d", last, orig.Seq+groupMinBatch)
	}
	if st := l.AppendStats(); st.Failed != 1 {
		t.Fatalf("stats %+v, want one failed batch", st)
	}
}

// TestGroupCommitSameIDTwice: two copies of one new event in the queue
// never share a batch: the second goes into the next write, where
// JetStream's dedup answers it.
func TestGroupCommitSameIDTwice(t *testing.T) {
	// JetStream's dedup answers the copies here: its window must outlast
	// the test on a slow machine.
	l := openLog(t, Config{DataDir: t.TempDir(), SyncAlways: true, GroupCommit: GroupCommitOn, GuardWindow: time.Minute})
	release := holdCommitter(t, l)
	var evs []*hookstreamv1.Event
	for i := range groupMinBatch {
		evs = append(evs, event(i+1))
	}
	evs = append(evs, event(1))
	got := make([]Appended, len(evs))
	errs := make([]error, len(evs))
	var wg sync.WaitGroup
	for i, ev := range evs {
		wg.Go(func() { got[i], errs[i] = writeEvent(t, l, ev) })
		waitQueued(t, l, i+1) // in this order
	}
	release()
	wg.Wait()
	for i := range evs {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
	}
	for i, app := range got[:groupMinBatch] {
		if app.Duplicate {
			t.Fatalf("append %d = %+v, a duplicate", i, app)
		}
		checkStored(t, l, app.Seq, evs[i])
	}
	if last := got[groupMinBatch]; !last.Duplicate || last.Seq != got[0].Seq {
		t.Fatalf("copy = %+v, want a duplicate of %d", last, got[0].Seq)
	}
	if st := l.AppendStats(); st.Writes != 2 || st.Failed != 0 {
		t.Fatalf("stats %+v, want a batch of %d and a lone write", st, groupMinBatch)
	}
	if last := lastSeq(t, l); last != groupMinBatch {
		t.Fatalf("log ends at %d, want %d", last, groupMinBatch)
	}
}

// appendQueued appends event(from) … event(from+n-1) at once while the
// committer is held, so that all n wait in its queue before it writes,
// and checks that each was stored as sent and not taken for a duplicate.
func appendQueued(t *testing.T, l *Log, from, n int) []Appended {
	t.Helper()
	release := holdCommitter(t, l)
	got := make([]Appended, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { got[i], errs[i] = l.Append(context.Background(), event(from+i)) })
	}
	waitQueued(t, l, n)
	release()
	wg.Wait()
	for i := range n {
		if errs[i] != nil || got[i].Duplicate {
			t.Fatalf("append %d = %+v, %v", from+i, got[i], errs[i])
		}
		checkStored(t, l, got[i].Seq, event(from+i))
	}
	return got
}

// TestGroupCommitFewArePublishedAlone: fewer appends than pay for a batch
// are published one by one, at once.
func TestGroupCommitFewArePublishedAlone(t *testing.T) {
	l := openLog(t, Config{DataDir: t.TempDir(), SyncAlways: true, GroupCommit: GroupCommitOn})
	const n = groupMinBatch - 1
	appendQueued(t, l, 0, n)
	if st := l.AppendStats(); st.Writes != n || st.Appends != n || st.Buckets[1] != n {
		t.Fatalf("stats %+v, want %d writes of one", st, n)
	}
}

// TestGroupCommitCallerGivesUp: an append whose caller's context ends
// while it is queued returns at once and is not written.
func TestGroupCommitCallerGivesUp(t *testing.T) {
	l := openLog(t, Config{DataDir: t.TempDir(), SyncAlways: true, GroupCommit: GroupCommitOn})
	release := holdCommitter(t, l)
	ctx, cancel := context.WithCancel(context.Background())
	gone := make(chan error, 1)
	go func() { _, err := l.Append(ctx, event(1)); gone <- err }()
	kept := make(chan error, 1)
	go func() { _, err := l.Append(context.Background(), event(2)); kept <- err }()
	waitQueued(t, l, 2)
	cancel()
	if err := <-gone; !errors.Is(err, ErrUnavailable) {
		t.Fatalf("cancelled append = %v, want ErrUnavailable", err)
	}
	release()
	if err := <-kept; err != nil {
		t.Fatal(err)
	}
	if last := lastSeq(t, l); last != 1 {
		t.Fatalf("log ends at %d, want 1 (the cancelled append dropped)", last)
	}
	checkStored(t, l, 1, event(2))
}

// TestGroupCommitClose: appends queued when the log closes fail with
// ErrUnavailable, and later ones too.
func TestGroupCommitClose(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := Open(ctx, Config{DataDir: t.TempDir(), SyncAlways: true, GroupCommit: GroupCommitOn, GuardWindow: guard}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	release := holdCommitter(t, l)
	errc := make(chan error, 1)
	go func() { _, err := l.Append(context.Background(), event(1)); errc <- err }()
	waitQueued(t, l, 1)
	closed := make(chan struct{})
	go func() { l.Close(); close(closed) }()
	time.Sleep(50 * time.Millisecond)
	release()
	<-closed
	// The queued append was written before the committer stopped, or
	// failed: either way it returned.
	if err := <-errc; err != nil && !errors.Is(err, ErrUnavailable) {
		t.Fatalf("queued append = %v", err)
	}
	if _, err := l.group.append(context.Background(), "x", nil, "id"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("append after close = %v, want ErrUnavailable", err)
	}
}

// writeEvent stores ev through the log's writer, skipping the index.
func writeEvent(t *testing.T, l *Log, ev *hookstreamv1.Event) (Appended, error) {
	t.Helper()
	data, err := marshalEvent(ev)
	if err != nil {
		return Appended{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return l.write(ctx, Subject(ev), data, ev.GetId())
}

// BenchmarkAppendParallel appends from many goroutines at once, as
// connections of webhooks do: fsync always and interval, group commit on
// and off, 1 to 64 callers. It reports appends per write.
func BenchmarkAppendParallel(b *testing.B) {
	for _, fsync := range []string{"always", "interval"} {
		for _, callers := range []int{1, 4, 8, 16, 64} {
			for _, gc := range []GroupCommit{GroupCommitAuto, GroupCommitOn, GroupCommitOff} {
				b.Run(fmt.Sprintf("fsync=%s/callers=%d/group_commit=%s", fsync, callers, gc), func(b *testing.B) {
					benchAppendParallel(b, fsync == "always", callers, gc)
				})
			}
		}
	}
}

// BenchmarkAppendParallelR3 is BenchmarkAppendParallel on a 3-node
// cluster in this process, with a replicated stream.
func BenchmarkAppendParallelR3(b *testing.B) {
	for _, gc := range []GroupCommit{GroupCommitOn, GroupCommitOff} {
		b.Run("callers=64/group_commit="+string(gc), func(b *testing.B) {
			benchAppendParallelWith(b, Config{URL: natsCluster(b), Replicas: 3}, 64, gc)
		})
	}
}

func benchAppendParallel(b *testing.B, always bool, callers int, gc GroupCommit) {
	benchAppendParallelWith(b, Config{SyncAlways: always}, callers, gc)
}

func benchAppendParallelWith(b *testing.B, cfg Config, callers int, gc GroupCommit) {
	cfg.DataDir, cfg.GroupCommit, cfg.GuardWindow = b.TempDir(), gc, time.Minute
	l := openLog(b, cfg)
	payload := make([]byte, 1500)
	var n atomic.Int64
	b.ResetTimer()
	cpu0, cpuErr := cputime.Process()
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for i := n.Add(1); i <= int64(b.N); i = n.Add(1) {
				ev := event(int(i))
				ev.Raw = &hookstreamv1.RawRequest{Body: payload}
				if _, err := l.Append(context.Background(), ev); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	cpu1, err := cputime.Process()
	b.StopTimer()
	if cpuErr == nil && err == nil {
		// The process's CPU: the server's store and sync work too, which
		// ns/op (the callers' wait) hides.
		b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
	}
	if st := l.AppendStats(); st.Writes > 0 {
		b.ReportMetric(float64(st.Appends)/float64(st.Writes), "appends/write")
	}
	if l.syncer != nil {
		b.ReportMetric(float64(l.syncer.waits.Load())/float64(max(1, l.syncer.syncs.Load())), "appends/sync")
	}
}

// natsCluster runs a 3-node JetStream cluster in this process and returns
// its client URLs.
func natsCluster(t testing.TB) string {
	t.Helper()
	_, _, urls := natsClusterServers(t)
	return urls
}

// natsClusterServers starts a 3-node JetStream cluster and returns its
// nodes, each node's options (to start it again) and the client URLs.
func natsClusterServers(t testing.TB) ([]*server.Server, []server.Options, string) {
	t.Helper()
	ports := make([]int, 3)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
	}
	var routes []*url.URL
	for _, p := range ports {
		routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", p)})
	}
	var urls []string
	var nodes []*server.Server
	var opts []server.Options
	for i := range 3 {
		o := server.Options{
			ServerName: fmt.Sprintf("n%d", i+1), StoreDir: t.TempDir(),
			Cluster: server.ClusterOpts{Name: "gc", Host: "127.0.0.1", Port: ports[i]}, Routes: routes,
		}
		ns := natstest.Start(t, o)
		o.Port = ns.Addr().(*net.TCPAddr).Port
		nodes, opts = append(nodes, ns), append(opts, o)
		urls = append(urls, ns.ClientURL())
	}
	return nodes, opts, strings.Join(urls, ",")
}

// TestGroupCommitOnExternal: group commit on, on an external server (no
// coalesced sync there: the commit's ack comes from the stream as usual)
// and on a 3-node cluster with a replicated stream (the batch is one
// Raft proposal): every caller gets its own position.
func TestGroupCommitOnExternal(t *testing.T) {
	for name, cfg := range map[string]func() Config{
		"single": func() Config { return Config{URL: natsServer(t).ClientURL()} },
		"R3":     func() Config { return Config{URL: natsCluster(t), Replicas: 3} },
	} {
		t.Run(name, func(t *testing.T) {
			c := cfg()
			c.DataDir, c.GroupCommit = t.TempDir(), GroupCommitOn
			l := openLog(t, c)
			appendQueued(t, l, 0, 32)
			if st := l.AppendStats(); st.Writes != 1 || st.Failed != 0 {
				t.Fatalf("stats %+v, want one batch", st)
			}
		})
	}
}
