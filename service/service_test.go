package service_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service"
	"github.com/hookstream/hookstream/service/auth"
	"github.com/hookstream/hookstream/service/eventlog"
	"github.com/hookstream/hookstream/service/filter"
	"github.com/hookstream/hookstream/service/normalize"
	"github.com/hookstream/hookstream/service/normalize/closer"
)

// fixable stands in for a normalizer bug that a release fixes: until fixed
// is set it rejects every body, as the buggy version did.
type fixable struct {
	normalize.Normalizer
	fixed atomic.Bool
}

func (f *fixable) Normalize(in normalize.Input) (*hookstreamv1.Event, error) {
	if !f.fixed.Load() {
		return nil, normalize.Reject(hookstreamv1.RejectionCode_REJECTION_CODE_UNKNOWN_FORMAT, "eventType", "pretend bug")
	}
	return f.Normalizer.Normalize(in)
}

func newServices(t *testing.T, n normalize.Normalizer) (*service.Services, *eventlog.Log) {
	t.Helper()
	return newServicesWith(t, service.Source{Name: "chat", Vendor: hookstreamv1.Vendor_VENDOR_CLOSER, Auth: auth.None(), Normalizer: n})
}

// newServicesWith builds the services over a fresh embedded log, with
// these sources.
func newServicesWith(t *testing.T, sources ...service.Source) (*service.Services, *eventlog.Log) {
	t.Helper()
	return newServicesKeepRaw(t, false, sources...)
}

// newServicesKeepRaw is newServicesWith with log.keep_raw as given.
func newServicesKeepRaw(t *testing.T, keepRaw bool, sources ...service.Source) (*service.Services, *eventlog.Log) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	log, err := eventlog.Open(context.Background(), eventlog.Config{DataDir: t.TempDir()}, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(log.Close)
	filters, err := filter.NewCompiler()
	if err != nil {
		t.Fatal(err)
	}
	s, err := service.New(service.Options{Logger: logger, Log: log, Filters: filters, Sources: sources, KeepRaw: keepRaw})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s, log
}

const closedBody = `{"eventType": "ThreadClosedEvent", "timestamp": 1718000950456, "closedType": "solved",
 "customer": {"id": "c-1", "apiKey": "api-key-secret", "firstName": "Ann"}, "assignee": null}`

func TestReprocessAfterNormalizerFix(t *testing.T) {
	v, err := normalize.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	n := &fixable{Normalizer: closer.New(v)}
	s, _ := newServices(t, n)
	ctx := context.Background()

	resp, err := s.Ingest.IngestWebhook(ctx, &hookstreamv1.IngestWebhookRequest{Source: "chat", Body: &httpbody.HttpBody{Data: []byte(closedBody)}})
	if err != nil || resp.GetOutcome() != hookstreamv1.IngestOutcome_INGEST_OUTCOME_QUARANTINED {
		t.Fatalf("ingest: %v %v", resp, err)
	}
	list, err := s.Quarantine.ListQuarantined(ctx, &hookstreamv1.ListQuarantinedRequest{})
	if err != nil || len(list.GetRequests()) != 1 {
		t.Fatalf("list: %v %v", list, err)
	}
	entry := list.GetRequests()[0]
	if entry.GetBodyText() == closedBody || !containsRedacted([]byte(entry.GetBodyText())) || len(entry.GetBody()) != 0 {
		t.Errorf("quarantined body keeps customer.apiKey, or is not text: %q %q", entry.GetBodyText(), entry.GetBody())
	}

	// Still broken: stays quarantined.
	all, err := s.Quarantine.ReprocessAllQuarantined(ctx, &hookstreamv1.ReprocessAllQuarantinedRequest{})
	if err != nil || all.GetStillFailing() != 1 || all.GetReprocessed() != 0 {
		t.Fatalf("reprocess before fix: %v %v", all, err)
	}

	n.fixed.Store(true)
	res, err := s.Quarantine.ReprocessQuarantined(ctx, &hookstreamv1.ReprocessQuarantinedRequest{Id: entry.GetId()})
	if err != nil || res.GetResult().GetOutcome() != hookstreamv1.IngestOutcome_INGEST_OUTCOME_ACCEPTED {
		t.Fatalf("reprocess after fix: %v %v", res, err)
	}
	// Same id rules as a first-time success.
	want, err := n.Normalize(normalize.Input{Source: "chat", Body: []byte(closedBody), ReceivedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.GetResult().GetEventId(); got != want.GetId() {
		t.Errorf("reprocessed event id %s, want %s", got, want.GetId())
	}
	got, err := s.Events.GetEvent(ctx, &hookstreamv1.GetEventRequest{Id: want.GetId()})
	if err != nil || got.GetEvent().GetType() != "conversation.closed" {
		t.Fatalf("GetEvent: %v %v", got, err)
	}
	if !got.GetEvent().GetReceivedAt().AsTime().Equal(entry.GetReceivedAt().AsTime()) {
		t.Errorf("received_at %v, want the original %v", got.GetEvent().GetReceivedAt(), entry.GetReceivedAt())
	}

	// Listed as reprocessed only on request; reprocessing again is a no-op.
	list, _ = s.Quarantine.ListQuarantined(ctx, &hookstreamv1.ListQuarantinedRequest{})
	if len(list.GetRequests()) != 0 {
		t.Errorf("reprocessed entry still listed as pending")
	}
	list, _ = s.Quarantine.ListQuarantined(ctx, &hookstreamv1.ListQuarantinedRequest{IncludeReprocessed: true})
	if len(list.GetRequests()) != 1 || list.GetRequests()[0].GetState() != hookstreamv1.QuarantineState_QUARANTINE_STATE_REPROCESSED ||
		list.GetRequests()[0].GetEventId() != want.GetId() {
		t.Errorf("entry after reprocess: %v", list.GetRequests())
	}
	again, err := s.Quarantine.ReprocessQuarantined(ctx, &hookstreamv1.ReprocessQuarantinedRequest{Id: entry.GetId()})
	if err != nil || again.GetResult().GetOutcome() != hookstreamv1.IngestOutcome_INGEST_OUTCOME_DUPLICATE {
		t.Errorf("second reprocess: %v %v", again, err)
	}

	// A fresh delivery of the same webhook is now a duplicate.
	resp, err = s.Ingest.IngestWebhook(ctx, &hookstreamv1.IngestWebhookRequest{Source: "chat", Body: &httpbody.HttpBody{Data: []byte(closedBody)}})
	if err != nil || !resp.GetDuplicate() {
		t.Errorf("redelivery after reprocess: %v %v", resp, err)
	}
}

func containsRedacted(b []byte) bool {
	return strings.Contains(string(b), normalize.Redacted) && !strings.Contains(string(b), "api-key-secret")
}

func TestQuarantinePaging(t *testing.T) {
	v, err := normalize.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	s, _ := newServices(t, &fixable{Normalizer: closer.New(v)})
	ctx := context.Background()
	for i := range 5 {
		body := []byte(fmt.Sprintf(`{"n": %d}`, i))
		if _, err := s.Ingest.IngestWebhook(ctx, &hookstreamv1.IngestWebhookRequest{Source: "chat", Body: &httpbody.HttpBody{Data: body}}); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	token := ""
	pages := 0
	for {
		resp, err := s.Quarantine.ListQuarantined(ctx, &hookstreamv1.ListQuarantinedRequest{PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, q := range resp.GetRequests() {
			if seen[q.GetId()] {
				t.Errorf("entry %s on two pages", q.GetId())
			}
			seen[q.GetId()] = true
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	if len(seen) != 5 || pages != 3 {
		t.Errorf("saw %d entries on %d pages, want 5 on 3", len(seen), pages)
	}
	if _, err := s.Quarantine.ListQuarantined(ctx, &hookstreamv1.ListQuarantinedRequest{PageToken: "garbage"}); err == nil {
		t.Error("garbage page token accepted")
	}
}

// TestGetEvent: an event of the dedup window is one read, and found only in
// a range that holds it; an unknown id is NOT_FOUND, for the whole log or
// for the range asked; a range that ends before it starts is invalid.
func TestGetEvent(t *testing.T) {
	v, err := normalize.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	s, _ := newServices(t, closer.New(v))
	ctx := context.Background()
	resp, err := s.Ingest.IngestWebhook(ctx, &hookstreamv1.IngestWebhookRequest{Source: "chat", Body: &httpbody.HttpBody{Data: []byte(closedBody)}})
	if err != nil || resp.GetOutcome() != hookstreamv1.IngestOutcome_INGEST_OUTCOME_ACCEPTED {
		t.Fatalf("ingest: %v %v", resp, err)
	}
	got, err := s.Events.GetEvent(ctx, &hookstreamv1.GetEventRequest{Id: resp.GetEventId()})
	if err != nil || got.GetEvent().GetId() != resp.GetEventId() {
		t.Fatalf("GetEvent(stored) = %v, %v", got, err)
	}

	// A stored event is found only in a range that holds its received_at,
	// both ends included, though the dedup index finds its id anywhere.
	at := got.GetEvent().GetReceivedAt().AsTime()
	for _, c := range []struct {
		after, before time.Time
		found         bool
	}{
		{at, at, true},
		{at.Add(-time.Hour), time.Time{}, true},
		{time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2020, 1, 2, 0, 0, 0, 0, time.UTC), false},
		{at.Add(time.Nanosecond), time.Time{}, false},
		{time.Time{}, at.Add(-time.Nanosecond), false},
	} {
		req := &hookstreamv1.GetEventRequest{Id: resp.GetEventId()}
		if !c.after.IsZero() {
			req.ReceivedAfter = timestamppb.New(c.after)
		}
		if !c.before.IsZero() {
			req.ReceivedBefore = timestamppb.New(c.before)
		}
		_, err := s.Events.GetEvent(ctx, req)
		if c.found && err != nil || !c.found && status.Code(err) != codes.NotFound {
			t.Errorf("GetEvent(received at %s, range %s to %s) = %v, want found %v", at, c.after, c.before, err, c.found)
		}
	}

	const unknown = "00112233445566778899aabbccddeeff"
	now := time.Now()
	for _, req := range []*hookstreamv1.GetEventRequest{
		{Id: unknown},
		{Id: unknown, ReceivedAfter: timestamppb.New(now.Add(-time.Minute)), ReceivedBefore: timestamppb.New(now)},
		{Id: unknown, ReceivedAfter: timestamppb.New(now.Add(-time.Hour))},
		{Id: unknown, ReceivedBefore: timestamppb.New(now.Add(-3 * time.Hour))},
	} {
		_, err := s.Events.GetEvent(ctx, req)
		st := status.Convert(err)
		if st.Code() != codes.NotFound || !strings.Contains(st.Message(), unknown) {
			t.Errorf("GetEvent(%v) = %v, want NOT_FOUND", req, err)
		}
	}

	bad := &hookstreamv1.GetEventRequest{Id: unknown, ReceivedAfter: timestamppb.New(now), ReceivedBefore: timestamppb.New(now.Add(-time.Second))}
	if err := v.Validate(bad); err == nil || !strings.Contains(err.Error(), "received_after must not be later than received_before") {
		t.Errorf("validate(after > before) = %v", err)
	}
}
