package service_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service"
	"github.com/hookstream/hookstream/service/normalize"
	"github.com/hookstream/hookstream/service/normalize/closer"
)

// costly depends on the event, so it cannot be refused when compiled, and
// costs tens of thousands of units per event without ever matching.
const costly = `[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14].all(a, ` +
	`[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14].all(b, ` +
	`[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14].all(c, a + b + c >= size(event.id) - 100))) ` +
	`&& event.type == "never"`

// A filter built to be slow cannot keep ListEvents busy: the request's
// evaluation budget ends it with a clear error naming where to go on; a
// request whose client is gone or whose server is stopping scans nothing.
func TestListEventsFilterBudget(t *testing.T) {
	v, err := normalize.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	s, _ := newServices(t, closer.New(v))
	ctx := context.Background()
	for i := range 400 {
		body := fmt.Sprintf(`{"eventType": "ThreadClosedEvent", "timestamp": %d, "closedType": "solved", "customer": {"id": "c-%d"}}`,
			1718000950456+int64(i), i)
		if _, err := s.Ingest.IngestWebhook(ctx, &hookstreamv1.IngestWebhookRequest{Source: "chat", Body: &httpbody.HttpBody{Data: []byte(body)}}); err != nil {
			t.Fatal(err)
		}
	}

	began := time.Now()
	_, err = s.Events.ListEvents(ctx, &hookstreamv1.ListEventsRequest{Filter: costly, PageSize: 10})
	took := time.Since(began)
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("ListEvents with a costly filter: %v, want RESOURCE_EXHAUSTED", err)
	}
	info := errorInfo(st)
	if info.GetReason() != service.ReasonFilterBudget || info.GetMetadata()["next_page_token"] == "" {
		t.Errorf("error info %v, want reason %s with a next_page_token", info, service.ReasonFilterBudget)
	}
	t.Logf("budget spent after %v", took)

	// The token continues the scan where the budget ran out.
	if _, err := s.Events.ListEvents(ctx, &hookstreamv1.ListEventsRequest{Filter: `event.type == "conversation.closed"`,
		PageToken: info.GetMetadata()["next_page_token"]}); err != nil {
		t.Errorf("continuing from the budget's token: %v", err)
	}

	// A costly filter that matches: when the budget runs out, what matched
	// so far is a short page, and its token goes on with the event the
	// budget cut short; every event comes once, in order.
	matching := strings.Replace(costly, `event.type == "never"`, `event.type == "conversation.closed"`, 1)
	var got []string
	pages, short := 0, 0
	for token := ""; ; pages++ {
		resp, err := s.Events.ListEvents(ctx, &hookstreamv1.ListEventsRequest{Filter: matching, PageSize: 1000, PageToken: token})
		if err != nil {
			t.Fatalf("page %d of a costly filter that matches: %v", pages+1, err)
		}
		for _, ev := range resp.GetEvents() {
			got = append(got, ev.GetSubject().GetId())
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
		short++
		if pages > 100 {
			t.Fatal("paging does not end")
		}
	}
	if len(got) != 400 || got[0] != "c-0" || got[399] != "c-399" || short == 0 {
		t.Fatalf("costly filter that matches: %d events over %d pages (%d cut short by the budget), want all 400 in order over more than one",
			len(got), pages+1, short)
	}
	for i, id := range got {
		if id != fmt.Sprintf("c-%d", i) {
			t.Fatalf("event %d is %s: skipped or repeated", i, id)
		}
	}
	// A filter too costly for one event is refused on that event (CEL's
	// own limit per evaluation), so a token never starts it again there.
	huge := strings.Replace(costly, `a + b + c`, `[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14].all(d, [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14].all(e, a + b + c + d + e`, 1)
	huge = strings.Replace(huge, `- 100)))`, `- 100)))))`, 1)
	if _, err := s.Events.ListEvents(ctx, &hookstreamv1.ListEventsRequest{Filter: huge}); status.Code(err) != codes.InvalidArgument ||
		errorInfo(status.Convert(err)).GetReason() != "INVALID_FILTER" || !strings.Contains(err.Error(), "cost limit") {
		t.Errorf("a filter too costly for one event: %v, want INVALID_ARGUMENT INVALID_FILTER naming the cost limit", err)
	}

	// A cheap filter over the same events is not affected.
	resp, err := s.Events.ListEvents(ctx, &hookstreamv1.ListEventsRequest{Filter: `event.type == "conversation.closed" && event.subject.id != ""`, PageSize: 1000})
	if err != nil || len(resp.GetEvents()) != 400 {
		t.Fatalf("cheap filter: %d events, %v; want 400", len(resp.GetEvents()), err)
	}

	gone, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Events.ListEvents(gone, &hookstreamv1.ListEventsRequest{Filter: costly}); status.Code(err) != codes.Canceled {
		t.Errorf("ListEvents for a gone client: %v, want CANCELED", err)
	}
	s.Stop()
	if _, err := s.Events.ListEvents(ctx, &hookstreamv1.ListEventsRequest{Filter: costly}); status.Code(err) != codes.Unavailable ||
		!strings.Contains(errorInfo(status.Convert(err)).GetReason(), "SHUTTING_DOWN") {
		t.Errorf("ListEvents while stopping: %v, want UNAVAILABLE SHUTTING_DOWN", err)
	}
}

func errorInfo(st *status.Status) *errdetails.ErrorInfo {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	return nil
}

// ListEvents with start_time starts at the first event stored at or after
// it; its page tokens continue from there.
func TestListEventsStartTime(t *testing.T) {
	t.Parallel()
	v, err := normalize.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	s, _ := newServices(t, closer.New(v))
	ctx := context.Background()
	post := func(i int) {
		t.Helper()
		body := fmt.Sprintf(`{"eventType": "ThreadClosedEvent", "timestamp": %d, "closedType": "solved", "customer": {"id": "c-%d"}}`,
			1718000950456+int64(i), i)
		if _, err := s.Ingest.IngestWebhook(ctx, &hookstreamv1.IngestWebhookRequest{Source: "chat", Body: &httpbody.HttpBody{Data: []byte(body)}}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		post(i)
	}
	// Appends are acknowledged before IngestWebhook returns: the first
	// three are stored before mid, the others after it.
	mid := time.Now()
	for i := 3; i < 6; i++ {
		post(i)
	}
	resp, err := s.Events.ListEvents(ctx, &hookstreamv1.ListEventsRequest{StartTime: timestamppb.New(mid), PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	ids := func(r *hookstreamv1.ListEventsResponse) (out []string) {
		for _, e := range r.GetEvents() {
			out = append(out, e.GetSubject().GetId())
		}
		return out
	}
	if got := ids(resp); strings.Join(got, ",") != "c-3,c-4" || resp.GetNextPageToken() == "" {
		t.Fatalf("first page from start_time: %v (token %q), want c-3,c-4 and a token", got, resp.GetNextPageToken())
	}
	resp, err = s.Events.ListEvents(ctx, &hookstreamv1.ListEventsRequest{StartTime: timestamppb.New(mid), PageSize: 2, PageToken: resp.GetNextPageToken()})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(resp); strings.Join(got, ",") != "c-5" {
		t.Fatalf("second page: %v, want c-5", got)
	}
	// Times past what the server counts in (int64 nanoseconds, 1677 to
	// 2262) mean what they say: it wrapped them around.
	for _, tc := range []struct {
		at   time.Time
		want int
	}{
		{time.Now().Add(time.Hour), 0},
		{time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), 0},
		{time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), 0},
		{time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC), 6},
		{time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), 6},
	} {
		resp, err = s.Events.ListEvents(ctx, &hookstreamv1.ListEventsRequest{StartTime: timestamppb.New(tc.at), PageSize: 10})
		if err != nil || len(resp.GetEvents()) != tc.want || resp.GetNextPageToken() != "" {
			t.Errorf("start_time %v: %d events, %v; want %d and a last page", tc.at, len(resp.GetEvents()), err, tc.want)
		}
	}
}
