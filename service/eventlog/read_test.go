package eventlog

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// sized is event i with a payload of about size bytes, of type typ.
func sized(i, size int, typ string) *hookstreamv1.Event {
	ev := event(i)
	ev.Type = typ
	ev.VendorType = strings.Repeat("x", size)
	return ev
}

// Client reads are capped in bytes: a batch holds at least one event,
// however large, and stops once it holds the cap; positions, pending
// counts and subject filters carry over from one batch to the next.
func TestReadBatchIsBoundedInBytes(t *testing.T) {
	l := openLog(t, Config{DataDir: t.TempDir()})
	ctx := context.Background()
	// 0: 300 KB, 1-9: 10 KB each, 10: 300 KB; odd ones are deals.
	for i := range 11 {
		size := 10_000
		if i == 0 || i == 10 {
			size = 300_000
		}
		typ := "lead.created"
		if i%2 == 1 {
			typ = "deal.updated"
		}
		mustAppend(t, l, sized(i, size, typ))
	}
	b, err := l.ReadBatch(ctx, Start{}, "", 0, 100_000)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Events) != 1 || b.Events[0].Seq != 1 || b.Pending != 10 {
		t.Fatalf("a batch capped below its first event: %d events from %d, pending %d; want just event 1, pending 10", len(b.Events), b.Events[0].Seq, b.Pending)
	}
	b, err = l.ReadBatch(ctx, Start{AfterSeq: 1}, "", 0, 35_000)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Events) != 4 || b.Events[0].Seq != 2 || b.Events[3].Pending != 6 || b.Pending != 6 {
		t.Fatalf("35 KB from event 2: %d events, pending %d", len(b.Events), b.Pending)
	}
	if b.Bytes > 35_000+12_000 {
		t.Errorf("batch of %d bytes for a cap of 35000", b.Bytes)
	}
	b, err = l.ReadBatch(ctx, Start{FromSeq: 2}, FilterSubject("src", "clinchpad", "deal", ""), 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Events) != 3 || b.Events[0].Seq != 2 || b.Events[2].Seq != 6 || b.Pending != 2 {
		t.Fatalf("3 deals from 2: %d events, pending %d", len(b.Events), b.Pending)
	}
	ev, err := b.Events[1].Decoded()
	if err != nil || ev.GetType() != "deal.updated" {
		t.Fatalf("decoded %v, %v", ev, err)
	}
	b, err = l.ReadBatch(ctx, Start{New: true}, "", 0, 0)
	if err != nil || len(b.Events) != 0 {
		t.Fatalf("from now: %d events, %v", len(b.Events), err)
	}
	if l.readBudget.Used() != 0 {
		t.Errorf("%d bytes of the read budget still held", l.readBudget.Used())
	}
}

// A Scan (a ListEvents page) stops after Config.ScanBytes of events, with
// the position to continue from.
func TestScanStopsAtItsByteCap(t *testing.T) {
	l := openLog(t, Config{DataDir: t.TempDir(), ScanBytes: 100_000, ReadBatchBytes: 40_000})
	for i := range 20 {
		mustAppend(t, l, sized(i, 10_000, "lead.created"))
	}
	var seqs []uint64
	next, err := l.Scan(context.Background(), Start{}, nil, 1000, func(s Stored) bool {
		seqs = append(seqs, s.Seq)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seqs) < 9 || len(seqs) > 11 || next != seqs[len(seqs)-1]+1 {
		t.Fatalf("scanned %v, next %d; want about 100 KB (10 events) and the position after them", seqs, next)
	}
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("scanned %v: not in order from 1", seqs)
		}
	}
	rest := 0
	next, err = l.Scan(context.Background(), Start{FromSeq: next}, nil, 1000, func(Stored) bool { rest++; return true })
	if err != nil || len(seqs)+rest != 20 || next != 0 {
		t.Fatalf("second page: %d events, next %d, %v", rest, next, err)
	}
}

// BenchmarkReadBatch reads the newest event of a log, as the delivery
// tail does for each stored event: one batched direct get for one event.
func BenchmarkReadBatch(b *testing.B) {
	l := openLog(b, Config{DataDir: b.TempDir()})
	ctx := context.Background()
	for i := range 10 {
		if _, err := l.Append(ctx, event(i)); err != nil {
			b.Fatal(err)
		}
	}
	last, err := l.LastSeq(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		batch, err := l.ReadBatch(ctx, Start{AfterSeq: last - 1}, "", 1000, 0)
		if err != nil || len(batch.Events) != 1 {
			b.Fatalf("ReadBatch = %d events, %v; want 1", len(batch.Events), err)
		}
	}
}

// TestReadBatchEndsOnClose: a read waiting for its answers ends as soon
// as the reads connection closes (a channel subscription's channel is not
// closed with it), not at the read timeout.
func TestReadBatchEndsOnClose(t *testing.T) {
	l := openLog(t, Config{DataDir: t.TempDir()})
	l.readSubject = directGetPrefix + "silent"
	if _, err := l.nc.Subscribe(l.readSubject, func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	if err := l.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := l.ReadBatch(context.Background(), Start{FromSeq: 1}, "", 10, 0)
		done <- err
	}()
	time.Sleep(200 * time.Millisecond) // the read is waiting for answers that never come
	select {
	case err := <-done:
		t.Fatalf("ReadBatch ended before the close: %v", err)
	default:
	}
	l.reads.Close()
	select { // readTimeout (10 s) would end it otherwise
	case err := <-done:
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("ReadBatch after close = %v, want ErrUnavailable", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadBatch still waiting 5 s after its connection closed")
	}
}

// Each event of a batch crosses the connection once: the read's inbox must
// not also match the wildcard subscription the connection's requests
// share (it did, under NewRespInbox, and every event came twice).
func TestReadBatchReceivesEachEventOnce(t *testing.T) {
	l := openLog(t, Config{DataDir: t.TempDir()})
	for i := range 20 {
		mustAppend(t, l, sized(i, 1_000, "lead.created"))
	}
	// A request sets up the connection's shared response subscription.
	_, _ = l.reads.Request("hookstream.test.nobody", nil, 50*time.Millisecond)
	before := l.reads.Stats().InMsgs
	b, err := l.ReadBatch(context.Background(), Start{}, "", 0, 0)
	if err != nil || len(b.Events) != 20 {
		t.Fatalf("read %d events, %v; want 20", len(b.Events), err)
	}
	// 20 events and the end-of-batch status.
	if got := l.reads.Stats().InMsgs - before; got != 21 {
		t.Errorf("the read brought %d messages over the connection, want 21", got)
	}
}
