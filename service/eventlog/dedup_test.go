package eventlog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/internal/idindex"
	"github.com/hookstream/hookstream/internal/natstest"
	"github.com/hookstream/hookstream/service/normalize"
)

// guard is short so the tests can outlive JetStream's own dedup window, and
// long enough that the index counts as fresh on a loaded machine: writes
// stop when it was last seen caught up more than guard/2 ago, and at 200 ms
// a CI machine running other packages' tests beside these failed appends
// with "dedup index is behind the log".
const guard = time.Second

func quiet() *slog.Logger {
	if os.Getenv("EVENTLOG_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func openLog(t testing.TB, cfg Config) *Log {
	t.Helper()
	if cfg.GuardWindow == 0 {
		cfg.GuardWindow = guard
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := Open(ctx, cfg, quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l
}

func event(i int) *hookstreamv1.Event {
	return &hookstreamv1.Event{
		Id:     normalize.EventID("src", hookstreamv1.Vendor_VENDOR_CLINCHPAD, fmt.Sprint(i)),
		Source: "src", Vendor: hookstreamv1.Vendor_VENDOR_CLINCHPAD, Type: "lead.created",
	}
}

func mustAppend(t *testing.T, l *Log, ev *hookstreamv1.Event) Appended {
	t.Helper()
	app, err := l.Append(context.Background(), ev)
	if err != nil {
		t.Fatalf("append %s: %v", ev.GetId(), err)
	}
	return app
}

// waitIndexed polls until the log's indexer has read up to seq.
func waitIndexed(t testing.TB, l *Log, seq uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for l.index.position() < seq {
		if time.Now().After(deadline) {
			t.Fatalf("indexer stuck at %d, want %d", l.index.position(), seq)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func lastSeq(t *testing.T, l *Log) uint64 {
	t.Helper()
	n, err := l.LastSeq(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDedupOutlivesJetStreamWindow(t *testing.T) {
	l := openLog(t, Config{DataDir: t.TempDir()})
	info, err := l.stream.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Duplicates != guard {
		t.Fatalf("JetStream dedup window = %s, want the guard %s", info.Config.Duplicates, guard)
	}
	first := mustAppend(t, l, event(1))
	if first.Duplicate {
		t.Fatal("first append reported a duplicate")
	}
	// Immediately: JetStream's guard (or the index) answers.
	if again := mustAppend(t, l, event(1)); !again.Duplicate || again.Seq != first.Seq {
		t.Fatalf("immediate retry = %+v, want duplicate of %d", again, first.Seq)
	}
	waitIndexed(t, l, first.Seq)
	time.Sleep(3 * guard) // JetStream has forgotten the id by now
	if late := mustAppend(t, l, event(1)); !late.Duplicate || late.Seq != first.Seq {
		t.Fatalf("retry after the guard window = %+v, want duplicate of %d", late, first.Seq)
	}
	if n := lastSeq(t, l); n != first.Seq {
		t.Fatalf("log holds %d events, want 1", n)
	}
	got, lk, err := l.Get(context.Background(), event(1).GetId(), GetOptions{})
	if err != nil || got.Seq != first.Seq || got.Event.GetId() != event(1).GetId() || !lk.Indexed || lk.Reads != 1 {
		t.Fatalf("Get = %+v, %+v, %v", got, lk, err)
	}
	if _, _, err := l.Get(context.Background(), event(2).GetId(), GetOptions{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(absent) = %v, want ErrNotFound", err)
	}
}

func TestDedupSurvivesRestartAndRebuild(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{DataDir: dir}
	l := openLog(t, cfg)
	const n = 300
	seqs := map[int]uint64{}
	for i := range n {
		seqs[i] = mustAppend(t, l, event(i)).Seq
	}
	waitIndexed(t, l, seqs[n-1])
	l.Close()

	check := func(name string, l *Log) {
		t.Helper()
		for i := range n {
			if app := mustAppend(t, l, event(i)); !app.Duplicate || app.Seq != seqs[i] {
				t.Fatalf("%s: retry of event %d = %+v, want duplicate of %d", name, i, app, seqs[i])
			}
		}
		if got := lastSeq(t, l); got != seqs[n-1] {
			t.Fatalf("%s: log has %d events, want %d", name, got, n)
		}
	}
	time.Sleep(2 * guard)
	l = openLog(t, cfg)
	check("after a restart", l)
	l.Close()

	// Without its checkpoint the index is rebuilt from the log.
	idxDir := filepath.Join(dir, "idindex", defaultStream)
	if err := os.Remove(filepath.Join(idxDir, "checkpoint.json")); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, cfg)
	check("after a rebuild", l)
	l.Close()

	// A checkpoint of another stream incarnation is not trusted either.
	if err := os.WriteFile(filepath.Join(idxDir, "checkpoint.json"), []byte(`{"log":"elsewhere","seq":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, cfg)
	check("after a foreign checkpoint", l)
	l.Close()

	// A torn segment (an OS crash while one was created) is discarded.
	if err := os.WriteFile(filepath.Join(idxDir, "999999999999.seg"), make([]byte, 100), 0o600); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, cfg)
	check("after a torn segment", l)
}

func TestIndexConfirmsHits(t *testing.T) {
	t.Run("embedded", func(t *testing.T) { testIndexConfirmsHits(t, openLog(t, Config{DataDir: t.TempDir()})) })
	// External: a miss on the direct get is asked again of the leader.
	t.Run("external", func(t *testing.T) {
		testIndexConfirmsHits(t, openLog(t, Config{URL: natsServer(t).ClientURL(), DataDir: t.TempDir()}))
	})
}

func testIndexConfirmsHits(t *testing.T, l *Log) {
	a := mustAppend(t, l, event(1))
	waitIndexed(t, l, a.Seq)
	// Damage the index: event 2's id points at event 1.
	if err := l.index.idx.Insert(idindex.KeyOf(event(2).GetId()), a.Seq, time.Now()); err != nil {
		t.Fatal(err)
	}
	if b := mustAppend(t, l, event(2)); b.Duplicate {
		t.Fatalf("a wrong index entry made a new event a duplicate: %+v", b)
	}
	if n := lastSeq(t, l); n != 2 {
		t.Fatalf("log holds %d events, want 2", n)
	}
	for _, leader := range []bool{true, false} {
		raw, err := l.msgGet(context.Background(), l.nc, msgGetRequest{Seq: a.Seq}, leader)
		if err != nil || raw.Header.Get(jetstream.MsgIDHeader) != event(1).GetId() || raw.Sequence != a.Seq || raw.Time.IsZero() {
			t.Fatalf("msgGet(%d, leader %v) = %+v, %v", a.Seq, leader, raw, err)
		}
		if _, err := l.msgGet(context.Background(), l.nc, msgGetRequest{Seq: 1000}, leader); !errors.Is(err, jetstream.ErrMsgNotFound) {
			t.Fatalf("msgGet(absent, leader %v) = %v, want ErrMsgNotFound", leader, err)
		}
	}
}

// TestStreamReplacedWhileRunning deletes the stream under a running log
// and creates it again (as another replica's start would): positions start
// over, and the index must start over with them.
func TestStreamReplacedWhileRunning(t *testing.T) {
	ns := natsServer(t)
	a := openLog(t, Config{URL: ns.ClientURL(), DataDir: t.TempDir()})
	for i := range 5 {
		mustAppend(t, a, event(i))
	}
	waitIndexed(t, a, 5)
	if err := a.js.DeleteStream(context.Background(), defaultStream); err != nil {
		t.Fatal(err)
	}
	b := openLog(t, Config{URL: ns.ClientURL(), DataDir: t.TempDir()}) // creates it again
	// Until a has noticed, it may answer 503; it must never call event 3 a
	// duplicate of the old stream's copy.
	deadline := time.Now().Add(20 * time.Second)
	for {
		app, err := a.Append(context.Background(), event(3))
		if err == nil {
			if app.Duplicate || app.Seq != 1 {
				t.Fatalf("first append to the new stream = %+v, want seq 1, not a duplicate", app)
			}
			break
		}
		if !errors.Is(err, ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("append to the new stream: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for {
		a.index.mu.Lock()
		rebuilt := a.index.resets > 0 && a.index.indexed >= 1
		a.index.mu.Unlock()
		if rebuilt && a.Ready() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the index was not rebuilt for the new stream")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(3 * guard)
	if app := mustAppend(t, a, event(3)); !app.Duplicate || app.Seq != 1 {
		t.Fatalf("retry in the new stream = %+v, want duplicate of 1", app)
	}
	if app := mustAppend(t, b, event(3)); !app.Duplicate {
		t.Fatalf("retry through the other log = %+v", app)
	}
}

// TestNewStreamContinuesPositions: a stream deleted while hookstream was
// stopped is created anew at the next start with its positions past
// every one the data dir's index knew, so a consumer's cursor from the
// deleted stream resumes at the new stream's first event instead of
// skipping the new events at or below it. A later start keeps the
// stream's first position.
func TestNewStreamContinuesPositions(t *testing.T) {
	ns := natsServer(t)
	dir := t.TempDir()
	a := openLog(t, Config{URL: ns.ClientURL(), DataDir: dir})
	for i := range 5 {
		mustAppend(t, a, event(i))
	}
	waitIndexed(t, a, 5)
	a.Close() // a clean stop commits the index's checkpoint at 5

	js := jetStreamOf(t, ns.ClientURL())
	if err := js.DeleteStream(context.Background(), defaultStream); err != nil {
		t.Fatal(err)
	}

	b := openLog(t, Config{URL: ns.ClientURL(), DataDir: dir})
	want := uint64(5 + 1 + positionGap)
	if app := mustAppend(t, b, event(10)); app.Seq != want || app.Duplicate {
		t.Fatalf("first append to the new stream = %+v, want seq %d", app, want)
	}
	batch, err := b.ReadBatch(context.Background(), Start{AfterSeq: 3}, "", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(batch.Events) != 1 || batch.Events[0].Seq != want {
		t.Fatalf("resuming after an old cursor read %d events (first %+v), want the new stream's one at %d", len(batch.Events), batch.Events, want)
	}
	b.Close()

	c := openLog(t, Config{URL: ns.ClientURL(), DataDir: dir}) // the stream is there: updated, not created
	if app := mustAppend(t, c, event(11)); app.Seq != want+1 {
		t.Fatalf("append after a restart = %+v, want seq %d", app, want+1)
	}
	info, err := c.stream.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.FirstSeq != want {
		t.Fatalf("stream's first_seq %d after a restart, want %d", info.Config.FirstSeq, want)
	}
	// Another data dir (a new replica, or one whose index was lost) knows
	// no earlier stream: nothing to continue.
	if first, err := (&Log{cfg: Config{DataDir: t.TempDir(), Stream: defaultStream}, log: quiet()}).continuePositions(); err != nil || first != 0 {
		t.Fatalf("continuePositions without a checkpoint = %d, %v; want 0", first, err)
	}
}

func TestWritesStopWhileIndexIsBehind(t *testing.T) {
	l := openLog(t, Config{DataDir: t.TempDir()})
	mustAppend(t, l, event(1))
	if !l.Ready() {
		t.Fatal("not ready with a current index")
	}
	l.stopIndex()
	<-l.indexDone
	deadline := time.Now().Add(10 * time.Second)
	for l.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("still ready long after the indexer stopped")
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, err := l.Append(context.Background(), event(2))
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "dedup index is behind") {
		t.Fatalf("append with a stale index: %v, want ErrUnavailable", err)
	}
	if n := lastSeq(t, l); n != 1 {
		t.Fatalf("log holds %d events, want 1", n)
	}
}

// TestUpgradeFromJetStreamDedup opens a stream made by an earlier version,
// which deduplicated with a 2-hour JetStream window only: the window
// shrinks to the guard and the ids already stored are indexed.
func TestUpgradeFromJetStreamDedup(t *testing.T) {
	ns := natsServer(t)
	js := jetStreamOf(t, ns.ClientURL())
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: defaultStream, Subjects: []string{subjectPrefix + ".>"},
		Duplicates: 2 * time.Hour, MaxAge: 7 * 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	old := event(1)
	data, _ := proto.Marshal(old)
	msg := &nats.Msg{Subject: Subject(old), Data: data, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, old.GetId())
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}

	l := openLog(t, Config{URL: ns.ClientURL(), DataDir: t.TempDir()})
	info, err := l.stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Duplicates != guard {
		t.Errorf("JetStream dedup window after the upgrade = %s, want %s", info.Config.Duplicates, guard)
	}
	if st := l.IndexStatus(); st.Entries != 1 {
		t.Errorf("index after the upgrade holds %d ids, want 1", st.Entries)
	}
	time.Sleep(3 * guard)
	if app := mustAppend(t, l, event(1)); !app.Duplicate || app.Seq != 1 {
		t.Fatalf("retry of an event stored before the upgrade = %+v", app)
	}
}

func natsServer(t *testing.T) *server.Server { return natstest.Start(t, server.Options{}) }

// jetStreamOf connects a JetStream client of its own to url, closed when
// the test ends.
func jetStreamOf(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// TestReplicasShareDedup runs two logs (two hookstream replicas) on one
// NATS server: each index learns what the other appended.
func TestReplicasShareDedup(t *testing.T) {
	ns := natsServer(t)
	a := openLog(t, Config{URL: ns.ClientURL(), DataDir: t.TempDir()})
	b := openLog(t, Config{URL: ns.ClientURL(), DataDir: t.TempDir()})
	var last uint64
	for i := range 50 {
		last = mustAppend(t, a, event(i)).Seq
	}
	waitIndexed(t, b, last)
	time.Sleep(3 * guard)
	for i := range 50 {
		if app := mustAppend(t, b, event(i)); !app.Duplicate {
			t.Fatalf("replica b stored event %d again (seq %d)", i, app.Seq)
		}
	}
	if n := lastSeq(t, b); n != last {
		t.Fatalf("log holds %d events, want %d", n, last)
	}
}

// recorder is a Follower that keeps what it is given.
type recorder struct {
	mu   sync.Mutex
	seqs []uint64
	lost []error
}

func (r *recorder) Event(st Stored) { r.mu.Lock(); r.seqs = append(r.seqs, st.Seq); r.mu.Unlock() }
func (r *recorder) Lost(err error)  { r.mu.Lock(); r.lost = append(r.lost, err); r.mu.Unlock() }

func (r *recorder) count() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.seqs) }

func TestFollower(t *testing.T) {
	l := openLog(t, Config{DataDir: t.TempDir()})
	mustAppend(t, l, event(0))
	waitIndexed(t, l, 1)
	f := &recorder{}
	head, err := l.Follow(f)
	if err != nil || head != 1 {
		t.Fatalf("Follow = %d, %v; want 1", head, err)
	}
	if _, err := l.Follow(&recorder{}); err == nil {
		t.Error("a second follower was accepted")
	}
	l.Unfollow(&recorder{}) // not the follower: no effect
	for i := 1; i <= 20; i++ {
		mustAppend(t, l, event(i))
	}
	deadline := time.Now().Add(10 * time.Second)
	for f.count() < 20 {
		if time.Now().After(deadline) {
			t.Fatalf("follower got %d of 20 events", f.count())
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.mu.Lock()
	seqs := slices.Clone(f.seqs)
	f.mu.Unlock() // not held past a Fatal: Close tells the follower it is lost
	for i, seq := range seqs {
		if seq != head+1+uint64(i) {
			t.Fatalf("follower got %v, want %d.. in order", seqs, head+1)
		}
	}
	l.Unfollow(f)
	mustAppend(t, l, event(21))
	waitIndexed(t, l, 22)
	if n := f.count(); n != 20 {
		t.Errorf("follower got %d events after Unfollow", n-20)
	}
}
