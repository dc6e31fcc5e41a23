package eventlog

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/hookstream/hookstream/internal/idindex"
)

const bigLogEvents = 200_000

// openBigLog fills a log with bigLogEvents small events (published
// directly, not through Append, to be quick), then lets the dedup index
// forget them: a later event starts a new index segment, and the filled
// ones expire from the log's 2 s window.
func openBigLog(t *testing.T, budget int) *Log {
	t.Helper()
	if testing.Short() {
		t.Skip("fills a log with 200,000 events")
	}
	l := openLog(t, Config{DataDir: t.TempDir(), DedupWindow: 2 * time.Second, minDedupWindow: time.Second, LookupBudget: budget})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Below nats.go's default PublishAsyncMaxPending (4,000): a larger
	// window made the client stall, and fail, while a loaded server acked.
	const window = 2000
	for i := 0; i < bigLogEvents; i += window {
		for j := i; j < min(i+window, bigLogEvents); j++ {
			ev := event(j)
			data, err := proto.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			msg := &nats.Msg{Subject: Subject(ev), Data: data, Header: nats.Header{}}
			msg.Header.Set(jetstream.MsgIDHeader, ev.GetId())
			if _, err := l.js.PublishMsgAsync(msg); err != nil {
				t.Fatalf("publish %d: %v", j, err)
			}
		}
		select {
		case <-l.js.PublishAsyncComplete():
		case <-ctx.Done():
			t.Fatal("publishing the events timed out")
		}
	}
	if n := lastSeq(t, l); n != bigLogEvents {
		t.Fatalf("log holds %d events, want %d", n, bigLogEvents)
	}
	for l.index.position() < bigLogEvents { // slow under the race detector
		if ctx.Err() != nil {
			t.Fatalf("indexer stuck at %d, want %d", l.index.position(), bigLogEvents)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Until the index has forgotten the newest filled event, append one
	// new event every 100 ms: the first starts a new segment, and the
	// filled events' segments expire once they are older than the window.
	newest := idindex.KeyOf(event(bigLogEvents - 1).GetId())
	for i := bigLogEvents; ; i++ {
		if _, ok, err := l.index.idx.Lookup(newest); err != nil {
			t.Fatal(err)
		} else if !ok {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the filled events never left the dedup index")
		}
		if l.Ready() { // the index may need a moment to know it is fresh after the fill
			mustAppend(t, l, event(i))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return l
}

// storedAt is when the log stored event i of a big log (at position i+1).
func storedAt(t *testing.T, l *Log, i int) time.Time {
	t.Helper()
	raw, err := l.msgGet(context.Background(), l.nc, msgGetRequest{Seq: uint64(i + 1)}, false)
	if err != nil {
		t.Fatal(err)
	}
	return raw.Time
}

// unknownID is an id no test event has.
const unknownID = "00112233445566778899aabbccddeeff"

// reads counts the log's reads while fn runs (every message read by
// position or subject, whoever counts them).
func reads(l *Log, fn func()) uint64 {
	before := l.msgReads.Load()
	fn()
	return l.msgReads.Load() - before
}

// TestGetIsBounded searches a log of 200,000 events for ids the dedup
// index does not know: an unknown id costs at most the budget of reads
// (the whole log of its bucket would be about 780), and old ids are found
// within the budget, newest first or with a time range.
func TestGetIsBounded(t *testing.T) {
	const budget = 500
	l := openBigLog(t, budget)
	ctx := context.Background()
	first, last := storedAt(t, l, 0), storedAt(t, l, bigLogEvents-1)
	bucketEvents := 0
	for i := range bigLogEvents {
		if bucket(event(i).GetId()) == bucket(unknownID) {
			bucketEvents++
		}
	}
	if bucketEvents <= budget {
		t.Fatalf("the unknown id's bucket holds %d events; the test needs more than the budget %d", bucketEvents, budget)
	}

	t.Run("unknown id, whole log", func(t *testing.T) {
		var lk Lookup
		var err error
		began := time.Now()
		read := reads(l, func() { _, lk, err = l.Get(ctx, unknownID, GetOptions{}) })
		took := time.Since(began)
		if !errors.Is(err, ErrBudgetExhausted) {
			t.Fatalf("Get(unknown) = %v, want ErrBudgetExhausted", err)
		}
		if lk.Reads > budget || lk.Budget != budget {
			t.Errorf("Get(unknown) made %d reads, budget %d", lk.Reads, lk.Budget)
		}
		if read != uint64(lk.Reads) {
			t.Errorf("Get(unknown) read %d messages and counted %d", read, lk.Reads)
		}
		// Newest first: it covered the newest part of the log, older than
		// the window, and says how far back it got.
		if lk.From.IsZero() || !lk.From.After(first) || !lk.From.Before(last) {
			t.Errorf("searched from %v; the fill spans %v to %v", lk.From, first, last)
		}
		if lk.Reach <= 0 {
			t.Errorf("reach %v, want an estimate", lk.Reach)
		}
		t.Logf("unknown id: %d reads, %v; searched from %v (%v before the fill's end), reach %v",
			lk.Reads, took, lk.From.Format(time.StampMilli), last.Sub(lk.From), lk.Reach)
	})

	t.Run("unknown id, budget for the whole bucket", func(t *testing.T) {
		l.cfg.LookupBudget = 4 * bucketEvents
		defer func() { l.cfg.LookupBudget = budget }()
		var lk Lookup
		var err error
		began := time.Now()
		read := reads(l, func() { _, lk, err = l.Get(ctx, unknownID, GetOptions{}) })
		if !errors.Is(err, ErrNotFound) || !lk.From.IsZero() || !lk.To.IsZero() {
			t.Fatalf("Get(unknown) = %+v, %v; want ErrNotFound for the whole log", lk, err)
		}
		// Every event of the bucket once, plus one read per chunk and a few
		// to find the bounds.
		if maxReads := bucketEvents + bucketEvents/chunkEvents*2 + 16; lk.Reads < bucketEvents || lk.Reads > maxReads {
			t.Errorf("Get(unknown) made %d reads; the bucket holds %d events (at most %d reads expected)", lk.Reads, bucketEvents, maxReads)
		}
		if read != uint64(lk.Reads) {
			t.Errorf("Get(unknown) read %d messages and counted %d", read, lk.Reads)
		}
		t.Logf("unknown id, whole bucket (%d events): %d reads, %v", bucketEvents, lk.Reads, time.Since(began))
	})

	t.Run("old id, newest first", func(t *testing.T) {
		// The newest events of the fill are just past the window: the
		// first chunks reach them.
		for _, i := range []int{bigLogEvents - 1, bigLogEvents - 2000} {
			got, lk, err := l.Get(ctx, event(i).GetId(), GetOptions{})
			if err != nil || got.Event.GetId() != event(i).GetId() || got.Seq != uint64(i+1) {
				t.Fatalf("Get(event %d) = %+v, %+v, %v", i, got, lk, err)
			}
			if lk.Indexed || lk.Reads > budget {
				t.Errorf("Get(event %d): indexed %v, %d reads (budget %d)", i, lk.Indexed, lk.Reads, budget)
			}
			t.Logf("event %d of %d: %d reads", i, bigLogEvents, lk.Reads)
		}
	})

	t.Run("old id beyond the budget, with a time range", func(t *testing.T) {
		const i = 1000 // near the start of the log: newest first cannot reach it
		id := event(i).GetId()
		if _, _, err := l.Get(ctx, id, GetOptions{}); !errors.Is(err, ErrBudgetExhausted) {
			t.Fatalf("Get(event %d) without a range = %v, want ErrBudgetExhausted", i, err)
		}
		at := storedAt(t, l, i)
		opts := GetOptions{After: at.Add(-50 * time.Millisecond), Before: at.Add(50 * time.Millisecond)}
		var got Stored
		var lk Lookup
		var err error
		read := reads(l, func() { got, lk, err = l.Get(ctx, id, opts) })
		if err != nil || got.Event.GetId() != id {
			t.Fatalf("Get(event %d, %v..%v) = %+v, %v", i, opts.After, opts.Before, lk, err)
		}
		if lk.Reads > budget || read != uint64(lk.Reads) {
			t.Errorf("Get(event %d) with a range: %d reads, counted %d (budget %d)", i, read, lk.Reads, budget)
		}
		t.Logf("event %d with a 100 ms range: %d reads", i, lk.Reads)
	})

	t.Run("unknown id, time range", func(t *testing.T) {
		opts := GetOptions{After: storedAt(t, l, 50_000), Before: storedAt(t, l, 60_000)}
		_, lk, err := l.Get(ctx, unknownID, opts)
		if !errors.Is(err, ErrNotFound) || !lk.From.Equal(opts.After) || !lk.To.Equal(opts.Before) {
			t.Fatalf("Get(unknown, range) = %+v, %v; want ErrNotFound for the range", lk, err)
		}
		// The range holds about 10,000/256 events of the bucket.
		if lk.Reads > 100 {
			t.Errorf("Get(unknown, range of 10,000 events) made %d reads", lk.Reads)
		}
		t.Logf("unknown id, range of 10,000 events: %d reads", lk.Reads)
	})

	t.Run("unknown id, range inside the window", func(t *testing.T) {
		now := time.Now()
		_, lk, err := l.Get(ctx, unknownID, GetOptions{After: now.Add(-100 * time.Millisecond), Before: now.Add(time.Minute)})
		if !errors.Is(err, ErrNotFound) || lk.Reads > 2 {
			t.Fatalf("Get(unknown, recent range) = %+v, %v; want ErrNotFound from the index and the log's tail", lk, err)
		}
	})

	t.Run("range before the log", func(t *testing.T) {
		_, lk, err := l.Get(ctx, unknownID, GetOptions{After: first.Add(-time.Hour), Before: first.Add(-time.Minute)})
		if !errors.Is(err, ErrNotFound) || lk.Reads > 3 {
			t.Fatalf("Get(unknown, range before the log) = %+v, %v", lk, err)
		}
	})
}

// TestGetRecentIsOneRead checks that an id of the dedup window costs one
// read, however big the log.
func TestGetRecentIsOneRead(t *testing.T) {
	l := openLog(t, Config{DataDir: t.TempDir()})
	ctx := context.Background()
	var last Appended
	for i := range 50 {
		last = mustAppend(t, l, event(i))
	}
	waitIndexed(t, l, last.Seq)
	got, lk, err := l.Get(ctx, event(7).GetId(), GetOptions{})
	if err != nil || got.Event.GetId() != event(7).GetId() || !lk.Indexed || lk.Reads != 1 {
		t.Fatalf("Get(recent) = %+v, %+v, %v", got, lk, err)
	}
	// An unknown id on a log younger than the window: the index, the
	// log's tail and the bounds of the (empty) rest.
	_, lk, err = l.Get(ctx, unknownID, GetOptions{})
	if !errors.Is(err, ErrNotFound) || lk.Reads > 4 {
		t.Fatalf("Get(unknown) = %+v, %v; want ErrNotFound in a few reads", lk, err)
	}
}

// TestGetReadsTheTail: events stored after the index's position (here: the
// indexer is stopped) are read from the log, through the stream leader on
// an external server.
func TestGetReadsTheTail(t *testing.T) {
	t.Run("embedded", func(t *testing.T) { testGetReadsTheTail(t, openLog(t, Config{DataDir: t.TempDir()})) })
	t.Run("external", func(t *testing.T) {
		testGetReadsTheTail(t, openLog(t, Config{URL: natsServer(t).ClientURL(), DataDir: t.TempDir()}))
	})
}

func testGetReadsTheTail(t *testing.T, l *Log) {
	ctx := context.Background()
	var last Appended
	for i := range 10 {
		last = mustAppend(t, l, event(i))
	}
	waitIndexed(t, l, last.Seq)
	l.stopIndex()
	<-l.indexDone
	ev := event(100)
	data, err := proto.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	msg := &nats.Msg{Subject: Subject(ev), Data: data, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, ev.GetId())
	if _, err := l.js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	got, lk, err := l.Get(ctx, ev.GetId(), GetOptions{})
	if err != nil || got.Event.GetId() != ev.GetId() || lk.Indexed || lk.Reads > 2 {
		t.Fatalf("Get(unindexed) = %+v, %+v, %v", got, lk, err)
	}
	if _, lk, err := l.Get(ctx, unknownID, GetOptions{}); !errors.Is(err, ErrNotFound) || lk.Reads > 5 {
		t.Fatalf("Get(unknown) = %+v, %v; want ErrNotFound in a few reads", lk, err)
	}
}

// BenchmarkGetUnknown looks up an unknown id in a log of 20,000 events
// that the dedup index knows (so the search covers the index's window and
// its tail only), and in the same log once the index has forgotten them
// all (a walk of the id's whole bucket, about 80 events).
func BenchmarkGetUnknown(b *testing.B) {
	l := openLog(b, Config{DataDir: b.TempDir(), DedupWindow: 2 * time.Second, minDedupWindow: time.Second})
	const n = 20_000
	for i := range n {
		ev := event(i)
		data, err := proto.Marshal(ev)
		if err != nil {
			b.Fatal(err)
		}
		msg := &nats.Msg{Subject: Subject(ev), Data: data, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, ev.GetId())
		if _, err := l.js.PublishMsgAsync(msg); err != nil {
			b.Fatal(err)
		}
		if i%4096 == 4095 {
			<-l.js.PublishAsyncComplete()
		}
	}
	<-l.js.PublishAsyncComplete()
	waitIndexed(b, l, n)
	run := func(b *testing.B, want error) {
		reads := 0
		b.ResetTimer()
		for range b.N {
			_, lk, err := l.Get(context.Background(), unknownID, GetOptions{})
			if !errors.Is(err, want) {
				b.Fatalf("Get(unknown) = %v, want %v", err, want)
			}
			reads += lk.Reads
		}
		b.ReportMetric(float64(reads)/float64(b.N), "reads/op")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(max(reads, 1)), "ns/read")
	}
	b.Run("window", func(b *testing.B) { run(b, ErrNotFound) })
	// Shift the index's idea of now past the window: nothing is covered by it.
	b.Run("walk", func(b *testing.B) {
		l.index.mu.Lock()
		l.index.serverTS = l.index.serverTS.Add(time.Hour)
		l.index.mu.Unlock()
		run(b, ErrNotFound)
	})
}
