package delivery

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/delivery/webhook"
	"github.com/hookstream/hookstream/service/eventlog"
)

// TestAttemptsLog: attempt records go out many to a message, and every
// way of reading them finds each record once, in order: an endpoint's
// attempts page by page (a page may end inside a message), an event's
// attempts to one endpoint or to all, a test event's (not in the log),
// and a record of the layout before.
func TestAttemptsLog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler)
	log, store := openTestLog(t)
	e := &Engine{o: Options{Logger: logger, Log: log, Store: store}, js: store.js, rec: mustRecorder(t, store, logger, nil)}

	// 600 events span three keys (attemptSpan 256).
	const events = 600
	ids := make([]string, events)
	seqs := make([]uint64, events)
	for i := range ids {
		ids[i] = fmt.Sprintf("%032x", 0xabc000+i)
		ap, err := log.Append(ctx, &hookstreamv1.Event{Id: ids[i], Source: "test", Type: "lead.moved", ReceivedAt: timestamppb.Now()})
		if err != nil {
			t.Fatal(err)
		}
		seqs[i] = ap.Seq
	}
	byEndpoint := map[string][]*hookstreamv1.DeliveryAttempt{}
	byEvent := map[string][]*hookstreamv1.DeliveryAttempt{}
	record := func(ep string, i, n int) {
		a := attemptRecord(ep, ids[i], n, eventlog.Cursor(seqs[i]), time.Now(), webhook.Result{Status: 200 + n, Latency: time.Millisecond})
		e.recordAttempt(a, seqs[i])
		byEndpoint[ep] = append(byEndpoint[ep], a)
		byEvent[ids[i]] = append(byEvent[ids[i]], a)
	}
	for i := range events {
		record("ep_a", i, 1)
		if i%2 == 0 {
			record("ep_b", i, 1)
		}
		if i == 300 {
			if err := e.rec.sync(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Retries, later: on their events' keys, after other events' records.
	for i := 7; i < events; i += 100 {
		record("ep_a", i, 2)
		record("ep_a", i, 3)
	}
	// A test event: not in the log.
	testID := fmt.Sprintf("%032x", 0xfeed)
	tst := attemptRecord("ep_b", testID, 1, "", time.Now(), webhook.Result{Status: 204})
	e.recordAttempt(tst, 0)
	if err := e.rec.sync(ctx); err != nil {
		t.Fatal(err)
	}
	records := len(byEndpoint["ep_a"]) + len(byEndpoint["ep_b"]) + 1
	info, err := store.streams[attemptsStream].Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d records in %d messages", records, info.State.Msgs)
	if info.State.Msgs > uint64(records)/20 {
		t.Errorf("%d records took %d messages; want them grouped (at most %d)", records, info.State.Msgs, records/20)
	}

	// An endpoint's attempts, page by page.
	for _, ep := range []string{"ep_a", "ep_b"} {
		want := byEndpoint[ep]
		if ep == "ep_b" {
			want = append(want, tst)
		}
		var got []*hookstreamv1.DeliveryAttempt
		from, pages := uint64(0), 0
		for {
			page, next, err := e.Attempts(ctx, AttemptQuery{Endpoint: ep}, from, 7)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > 7 {
				t.Fatalf("a page of %d attempts, asked for 7", len(page))
			}
			got = append(got, page...)
			pages++
			if next == 0 {
				break
			}
			if pages > len(want) {
				t.Fatalf("%s: no end after %d pages", ep, pages)
			}
			from = next
		}
		if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
			t.Errorf("%s's attempts paged by 7 (-want +got):\n%s", ep, diff)
		}
	}

	// Only those made at or after a time, paged, of an endpoint and of an
	// event: the ones before it are left out, though stored in the same
	// messages.
	since := func(as []*hookstreamv1.DeliveryAttempt, t time.Time) []*hookstreamv1.DeliveryAttempt {
		var out []*hookstreamv1.DeliveryAttempt
		for _, a := range as {
			if !a.GetTime().AsTime().Before(t) {
				out = append(out, a)
			}
		}
		return out
	}
	cut := byEndpoint["ep_a"][len(byEndpoint["ep_a"])-9].GetTime().AsTime()
	for _, q := range []AttemptQuery{{Endpoint: "ep_a", Since: cut}, {EventID: ids[507], Since: cut}} {
		var got []*hookstreamv1.DeliveryAttempt
		for from, pages := uint64(0), 0; ; pages++ {
			page, next, err := e.Attempts(ctx, q, from, 4)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, page...)
			if next == 0 {
				break
			}
			if pages > events {
				t.Fatalf("%+v: no end after %d pages", q, pages)
			}
			from = next
		}
		all := byEndpoint["ep_a"]
		if q.EventID != "" {
			all = byEvent[q.EventID]
		}
		want := since(all, cut)
		if len(want) == 0 || len(want) == len(all) {
			t.Fatalf("the cut leaves %d attempts; the test wants some before it and some after", len(want))
		}
		if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
			t.Errorf("%+v: attempts since the cut, paged by 4 (-want +got):\n%s", q, diff)
		}
	}

	// An event's attempts, to one endpoint and to all, and one a page.
	for _, i := range []int{0, 1, 7, 255, 256, 307, 599} {
		id := ids[i]
		got, next, err := e.Attempts(ctx, AttemptQuery{Endpoint: "ep_a", EventID: id}, 0, 100)
		if err != nil || next != 0 {
			t.Fatalf("Attempts(ep_a, event %d) = next %d, %v", i, next, err)
		}
		if diff := cmp.Diff(only(byEvent[id], "ep_a"), got, protocmp.Transform()); diff != "" {
			t.Errorf("event %d's attempts to ep_a (-want +got):\n%s", i, diff)
		}
		var all []*hookstreamv1.DeliveryAttempt
		for from := uint64(0); ; {
			page, next, err := e.Attempts(ctx, AttemptQuery{EventID: id}, from, 1)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, page...)
			if next == 0 {
				break
			}
			from = next
		}
		// Each endpoint's in order (two endpoints' records of one flush
		// go out in messages of their own).
		for _, ep := range []string{"ep_a", "ep_b"} {
			if diff := cmp.Diff(only(byEvent[id], ep), only(all, ep), protocmp.Transform()); diff != "" {
				t.Errorf("event %d's attempts to every endpoint, one a page, those to %s (-want +got):\n%s", i, ep, diff)
			}
		}
		if len(all) != len(byEvent[id]) {
			t.Errorf("event %d: %d attempts to every endpoint, want %d", i, len(all), len(byEvent[id]))
		}
	}
	if got, _, err := e.Attempts(ctx, AttemptQuery{EventID: testID}, 0, 10); err != nil || len(got) != 1 || !proto.Equal(got[0], tst) {
		t.Errorf("the test event's attempts = %v, %v; want %v", got, err, tst)
	}
	if got, next, err := e.Attempts(ctx, AttemptQuery{EventID: fmt.Sprintf("%032x", 0xdead)}, 0, 10); err != nil || len(got) != 0 || next != 0 {
		t.Errorf("an unknown event's attempts = %v, %d, %v; want none", got, next, err)
	}

	// A record of the layout before: one message, no header, keyed by
	// the event id; listed with its endpoint's.
	old := attemptRecord("ep_c", ids[3], 1, eventlog.Cursor(seqs[3]), time.Now(), webhook.Result{Status: 500})
	data, err := proto.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.js.Publish(ctx, attemptsPrefix+".ep_c."+ids[3][:3], data); err != nil {
		t.Fatal(err)
	}
	if got, _, err := e.Attempts(ctx, AttemptQuery{Endpoint: "ep_c"}, 0, 10); err != nil || len(got) != 1 || !proto.Equal(got[0], old) {
		t.Errorf("ep_c's attempts = %v, %v; want the old-layout record", got, err)
	}
}

// TestAttemptGroups: a flush's records go out in messages of runs of an
// endpoint's records on one subject, at most attemptsPerMsg records and
// about attemptsMsgBytes each, every record once, each endpoint's in the
// order they came.
func TestAttemptGroups(t *testing.T) {
	t.Parallel()
	var batch []pendingAttempt
	want := map[string][]string{}
	add := func(endpoint, key string, body int) {
		a := &hookstreamv1.DeliveryAttempt{Id: fmt.Sprintf("att_%d", len(batch)), EndpointId: endpoint, ResponseBody: strings.Repeat("x", body)}
		data, err := proto.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		batch = append(batch, pendingAttempt{endpoint, attemptsPrefix + "." + endpoint + "." + key, data})
		want[endpoint] = append(want[endpoint], a.Id)
	}
	for range 2500 {
		add("ep_a", "000", 10)
	}
	for range 200 {
		add("ep_b", "000", 4096) // about 800 KiB: four messages
	}
	add("ep_c", "000", 1)
	add("ep_c", "001", 1) // a run each
	add("ep_c", "000", 1)
	add("ep_a", "000", 1) // ep_a's newest record: its last message goes out last
	msgs := group(batch, attemptsMsgBytes)
	got := map[string][]string{}
	counts := map[string][]int{}
	for _, m := range msgs {
		if len(m.Data) > attemptsMsgBytes {
			t.Errorf("a message of %d bytes, more than %d", len(m.Data), attemptsMsgBytes)
		}
		records, err := decodeAttempts(&jetstream.RawStreamMsg{Header: m.Header, Data: m.Data})
		if err != nil {
			t.Fatal(err)
		}
		if n := m.Header.Get(headerAttempts); n != fmt.Sprint(len(records)) {
			t.Errorf("header says %s records, the message holds %d", n, len(records))
		}
		if len(records) > attemptsPerMsg {
			t.Errorf("a message of %d records, more than %d", len(records), attemptsPerMsg)
		}
		ep := records[0].GetEndpointId()
		for _, a := range records {
			if a.GetEndpointId() != ep {
				t.Errorf("a message on %s holds a record of %s", m.Subject, a.GetEndpointId())
			}
			got[ep] = append(got[ep], a.GetId())
		}
		counts[ep] = append(counts[ep], len(records))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records by endpoint, in the order stored (-want +got):\n%s", diff)
	}
	if last := msgs[len(msgs)-1]; last.Subject != attemptsPrefix+".ep_a.000" {
		t.Errorf("the last message is on %s; want ep_a's, whose record is the newest", last.Subject)
	}
	for ep, want := range map[string][]int{"ep_a": {1000, 1000, 501}, "ep_c": {1, 1, 1}} {
		if diff := cmp.Diff(want, counts[ep]); diff != "" {
			t.Errorf("%s's messages (-want +got):\n%s", ep, diff)
		}
	}
	if n := len(counts["ep_b"]); n != 4 {
		t.Errorf("ep_b's 800 KiB went in %d messages (%v); want 4", n, counts["ep_b"])
	}
}

// TestRecordsLost: records the attempts log cannot take are counted (and
// delivery is not held up by them).
func TestRecordsLost(t *testing.T) {
	t.Parallel()
	st, nc := openTestStore(t)
	lost := prometheus.NewCounter(prometheus.CounterOpts{Name: "lost"})
	rec := mustRecorder(t, st, slog.New(slog.DiscardHandler), lost)
	for i := range 3 {
		rec.add(attemptRecord("ep_a", fmt.Sprintf("%032x", i), 1, "", time.Now(), webhook.Result{Status: 200}), uint64(i+1))
	}
	if err := rec.sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := counterValue(t, lost); n != 0 {
		t.Fatalf("%v records lost with the log up", n)
	}
	nc.Close()
	for i := range 3 {
		rec.add(attemptRecord("ep_a", fmt.Sprintf("%032x", i), 2, "", time.Now(), webhook.Result{Status: 200}), uint64(i+1))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = rec.sync(ctx)
	if n := counterValue(t, lost); n != 3 {
		t.Errorf("%v records counted lost with the connection closed; want 3", n)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func mustRecorder(t *testing.T, st *Store, logger *slog.Logger, lost prometheus.Counter) *recorder {
	t.Helper()
	r, err := newRecorder(st.js.Conn(), logger, lost)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRecorderFailures: records the server refuses are counted lost even
// when a later message is stored; a dead letter is stored though the
// attempts log refused records; while a flush is held up, records wait
// up to attemptsMaxPending (the rest counted lost) and no goroutine
// piles up per record.
func TestRecorderFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler)
	log, store := openTestLog(t)
	info, err := store.streams[attemptsStream].Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := info.Config
	cfg.MaxMsgSize = 2000 // a record with a 4 KiB response body is refused
	if _, err := store.js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	lost := prometheus.NewCounter(prometheus.CounterOpts{Name: "lost"})
	e := &Engine{o: Options{Logger: logger, Log: log, Store: store}, js: store.js, rec: mustRecorder(t, store, logger, lost)}
	big := webhook.Result{Status: 500, Body: []byte(strings.Repeat("x", 4000))}

	e.rec.add(attemptRecord("ep_a", fmt.Sprintf("%032x", 1), 1, "", time.Now(), big), 1)
	e.rec.add(attemptRecord("ep_b", fmt.Sprintf("%032x", 2), 1, "", time.Now(), webhook.Result{Status: 200}), 2)
	if err := e.rec.sync(ctx); err != nil {
		t.Fatal(err)
	}
	if n := counterValue(t, lost); n != 1 {
		t.Errorf("the refused record of two: %v counted lost, want 1", n)
	}

	id := fmt.Sprintf("%032x", 7)
	ap, err := log.Append(ctx, &hookstreamv1.Event{Id: id, Source: "test", Type: "lead.moved", ReceivedAt: timestamppb.Now()})
	if err != nil {
		t.Fatal(err)
	}
	j := &job{seq: ap.Seq, id: id, first: time.Now(), attempts: 2}
	first := attemptRecord("ep_a", id, 1, eventlog.Cursor(ap.Seq), time.Now(), webhook.Result{Status: 503})
	e.rec.add(first, ap.Seq)
	last := attemptRecord("ep_a", id, 2, eventlog.Cursor(ap.Seq), time.Now(), webhook.Result{Status: 503})
	e.rec.add(last, ap.Seq)
	e.rec.add(attemptRecord("ep_z", fmt.Sprintf("%032x", 9), 1, "", time.Now(), big), 99999) // refused, written last
	if err := e.storeDeadLetter(ctx, "ep_a", j, last); err != nil {
		t.Fatalf("storeDeadLetter with the attempts log refusing another endpoint's record: %v", err)
	}
	dead, _, err := e.DeadLetters(ctx, "ep_a", 0, 10)
	if err != nil || len(dead) != 1 {
		t.Fatalf("dead letters = %v, %v; want one", dead, err)
	}
	if got := dead[0].GetAttempts(); len(got) != 2 || !proto.Equal(got[0], first) || !proto.Equal(got[1], last) {
		t.Errorf("the dead letter's attempts = %v; want both", got)
	}

	e.rec.flushMu.Lock() // a flush held up
	before := runtime.NumGoroutine()
	lostBefore := counterValue(t, lost)
	for i := range attemptsMaxPending + 100 {
		e.rec.add(attemptRecord("ep_c", fmt.Sprintf("%032x", i), 1, "", time.Now(), webhook.Result{Status: 200}), uint64(i+1))
	}
	time.Sleep(50 * time.Millisecond)
	grew := runtime.NumGoroutine() - before
	e.rec.mu.Lock()
	pending := len(e.rec.pending)
	e.rec.mu.Unlock()
	e.rec.flushMu.Unlock()
	// (Other goroutines come and go meanwhile; one per record would be
	// tens of thousands.)
	if grew > 100 || pending != attemptsMaxPending {
		t.Errorf("a held flush: %d more goroutines, %d records waiting; want at most 100 and %d", grew, pending, attemptsMaxPending)
	}
	if n := counterValue(t, lost) - lostBefore; n != 100 {
		t.Errorf("%v records counted lost past the bound, want 100", n)
	}
	if err := e.rec.sync(ctx); err != nil {
		t.Fatal(err)
	}
}

// only is the attempts of as to endpoint ep, in their order.
func only(as []*hookstreamv1.DeliveryAttempt, ep string) []*hookstreamv1.DeliveryAttempt {
	var out []*hookstreamv1.DeliveryAttempt
	for _, a := range as {
		if a.GetEndpointId() == ep {
			out = append(out, a)
		}
	}
	return out
}

// TestSyncWaitsOnlyForEarlierRecords: a sync returns once the messages
// sent before it are answered, however many are sent after it.
func TestSyncWaitsOnlyForEarlierRecords(t *testing.T) {
	t.Parallel()
	st, _ := openTestStore(t)
	rec := mustRecorder(t, st, slog.New(slog.DiscardHandler), nil)
	rec.countMu.Lock()
	rec.sent, rec.answered = 5, 3 // two messages not answered yet
	rec.countMu.Unlock()
	done := make(chan error, 1)
	go func() { done <- rec.sync(context.Background()) }()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(2 * time.Second); !cond(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	waitFor("the sync to wait", func() bool {
		rec.countMu.Lock()
		defer rec.countMu.Unlock()
		return len(rec.waiters) == 1
	})
	rec.countMu.Lock()
	rec.sent += 100 // later flushes, never all answered at once
	rec.countMu.Unlock()
	rec.answer()
	select {
	case err := <-done:
		t.Fatalf("sync returned (%v) with one of its messages unanswered", err)
	case <-time.After(50 * time.Millisecond):
	}
	rec.answer()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("sync still waits with every message sent before it answered")
	}
}
