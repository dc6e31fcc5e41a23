package service_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service"
	"github.com/hookstream/hookstream/service/auth"
	"github.com/hookstream/hookstream/service/normalize"
	"github.com/hookstream/hookstream/service/normalize/closer"
	"github.com/hookstream/hookstream/service/normalize/pipedrive"
)

// newQuarantineServices has two sources, chat and other, sharing one
// normalizer that rejects everything until fixed.
func newQuarantineServices(t *testing.T) (*service.Services, *fixable) {
	t.Helper()
	v, err := normalize.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	n := &fixable{Normalizer: closer.New(v)}
	s, _ := newServicesWith(t,
		service.Source{Name: "chat", Vendor: hookstreamv1.Vendor_VENDOR_CLOSER, Auth: auth.None(), Normalizer: n},
		service.Source{Name: "other", Vendor: hookstreamv1.Vendor_VENDOR_CLOSER, Auth: auth.None(), Normalizer: n})
	return s, n
}

// closedAt is a valid Closer webhook, distinct for each i.
func closedAt(i int) []byte {
	return []byte(strings.Replace(strings.Replace(closedBody, "1718000950456", fmt.Sprint(1718000950456+i), 1), `"c-1"`, fmt.Sprintf(`"c-%d"`, i), 1))
}

// quarantineN ingests n bodies while the normalizer rejects them; every
// tenth (i%10 == 9) goes to source other. It returns the ids in order.
func quarantineN(t *testing.T, s *service.Services, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		src := "chat"
		if i%10 == 9 {
			src = "other"
		}
		resp, err := s.Ingest.IngestWebhook(context.Background(), &hookstreamv1.IngestWebhookRequest{Source: src, Body: &httpbody.HttpBody{Data: closedAt(i)}})
		if err != nil || resp.GetOutcome() != hookstreamv1.IngestOutcome_INGEST_OUTCOME_QUARANTINED {
			t.Fatalf("ingest %d: %v %v", i, resp, err)
		}
		ids = append(ids, resp.GetQuarantineId())
	}
	return ids
}

func reasonOf(err error) string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

type page struct {
	ids   []string
	token string
}

// listPages pages through ListQuarantined until the token is empty.
func listPages(t *testing.T, s *service.Services, req *hookstreamv1.ListQuarantinedRequest) []page {
	t.Helper()
	var pages []page
	for {
		resp, err := s.Quarantine.ListQuarantined(context.Background(), req)
		if err != nil {
			t.Fatalf("page %d: %v", len(pages)+1, err)
		}
		p := page{token: resp.GetNextPageToken()}
		for _, q := range resp.GetRequests() {
			p.ids = append(p.ids, q.GetId())
		}
		pages = append(pages, p)
		if p.token == "" {
			return pages
		}
		if len(pages) > 100 {
			t.Fatal("paging does not end")
		}
		req.PageToken = p.token
	}
}

func flatten(pages []page) []string {
	var all []string
	for _, p := range pages {
		all = append(all, p.ids...)
	}
	return all
}

// Paging reads at most the budget per call, whatever the filter: a filter
// that skips most entries still ends, with short or empty pages that carry
// a token, and every entry is listed once, in order.
func TestQuarantinePagingIsBounded(t *testing.T) {
	s, _ := newQuarantineServices(t)
	ids := quarantineN(t, s, 30)
	const budget = 7
	service.SetQuarantineScanBudget(s, budget, 1<<20)

	pages := listPages(t, s, &hookstreamv1.ListQuarantinedRequest{PageSize: 5})
	if got := flatten(pages); strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Errorf("all pages: %d entries %v, want the %d ingested in order", len(got), got, len(ids))
	}
	for i, p := range pages {
		if len(p.ids) > 5 {
			t.Errorf("page %d has %d entries, page_size 5", i, len(p.ids))
		}
	}

	// Source other holds entries 9, 19 and 29: the first call reads 7
	// entries, none of them other's, and still answers, empty, with a token.
	pages = listPages(t, s, &hookstreamv1.ListQuarantinedRequest{PageSize: 10, Source: "other"})
	if len(pages[0].ids) != 0 || pages[0].token == "" {
		t.Errorf("first filtered page: %v, want no entries and a token", pages[0])
	}
	if got, want := strings.Join(flatten(pages), ","), strings.Join([]string{ids[9], ids[19], ids[29]}, ","); got != want {
		t.Errorf("filtered: %s, want %s", got, want)
	}
	// 30 entries at 7 a call: 5 calls (the last one finds the end).
	if len(pages) != 5 {
		t.Errorf("filtered listing took %d calls, want 5 (30 entries, %d per call)", len(pages), budget)
	}

	// The byte budget: about two entries' worth gives pages of at most two,
	// and a budget below one entry still returns one entry per call.
	entry := len(closedAt(10)) + 200
	service.SetQuarantineScanBudget(s, 1000, 2*entry)
	pages = listPages(t, s, &hookstreamv1.ListQuarantinedRequest{PageSize: 50})
	for i, p := range pages[:len(pages)-1] {
		if len(p.ids) < 1 || len(p.ids) > 2 {
			t.Errorf("byte-bounded page %d has %d entries, want 1 or 2", i, len(p.ids))
		}
	}
	if got := flatten(pages); len(got) != 30 {
		t.Errorf("byte-bounded pages listed %d entries, want 30", len(got))
	}
	service.SetQuarantineScanBudget(s, 1000, 10)
	pages = listPages(t, s, &hookstreamv1.ListQuarantinedRequest{PageSize: 50})
	if len(pages) != 30 || len(pages[0].ids) != 1 || len(flatten(pages)) != 30 {
		t.Errorf("budget below one entry: %d pages, first with %d entries; want 30 pages of 1", len(pages), len(pages[0].ids))
	}
}

// Tokens are bound to the method and filters, and made-up ones are refused.
func TestQuarantinePageTokens(t *testing.T) {
	s, _ := newQuarantineServices(t)
	quarantineN(t, s, 6)
	ctx := context.Background()
	first, err := s.Quarantine.ListQuarantined(ctx, &hookstreamv1.ListQuarantinedRequest{PageSize: 2, Source: "chat"})
	if err != nil || first.GetNextPageToken() == "" {
		t.Fatalf("first page: %v %v", first, err)
	}
	tok := first.GetNextPageToken()
	// The same token with the same filters works, and page_size may change.
	if next, err := s.Quarantine.ListQuarantined(ctx, &hookstreamv1.ListQuarantinedRequest{PageSize: 3, Source: "chat", PageToken: tok}); err != nil || len(next.GetRequests()) != 3 {
		t.Fatalf("second page: %v %v", next, err)
	}
	tampered := []byte(tok)
	tampered[len(tampered)/2] ^= 1
	for name, req := range map[string]*hookstreamv1.ListQuarantinedRequest{
		"garbage":               {PageToken: "garbage"},
		"old format":            {PageToken: "1718000950456000000_0123456789abcdef"},
		"tampered":              {Source: "chat", PageToken: string(tampered)},
		"other source":          {Source: "other", PageToken: tok},
		"no source":             {PageToken: tok},
		"other include_reproc.": {Source: "chat", IncludeReprocessed: true, PageToken: tok},
	} {
		_, err := s.Quarantine.ListQuarantined(ctx, req)
		if status.Code(err) != codes.InvalidArgument || reasonOf(err) != service.ReasonInvalidPageToken {
			t.Errorf("%s: %v, want INVALID_ARGUMENT %s", name, err, service.ReasonInvalidPageToken)
		}
	}
	_, err = s.Quarantine.ReprocessAllQuarantined(ctx, &hookstreamv1.ReprocessAllQuarantinedRequest{Source: "chat", PageToken: tok})
	if status.Code(err) != codes.InvalidArgument || reasonOf(err) != service.ReasonInvalidPageToken {
		t.Errorf("a list token given to ReprocessAll: %v", err)
	}
}

// runReprocessAll calls ReprocessAll until the run completes.
func runReprocessAll(t *testing.T, s *service.Services, source string) (calls int, results []*hookstreamv1.ReprocessResult, reprocessed, failing int32) {
	t.Helper()
	token := ""
	for {
		resp, err := s.Quarantine.ReprocessAllQuarantined(context.Background(), &hookstreamv1.ReprocessAllQuarantinedRequest{Source: source, PageToken: token})
		if err != nil {
			t.Fatalf("call %d: %v", calls+1, err)
		}
		calls++
		results = append(results, resp.GetResults()...)
		reprocessed += resp.GetReprocessed()
		failing += resp.GetStillFailing()
		if token = resp.GetNextPageToken(); token == "" {
			return
		}
		if calls > 100 {
			t.Fatal("the run does not end")
		}
	}
}

// ReprocessAll works in bounded batches and a run ends even though every
// still-failing entry it rewrites moves to the end of the bucket.
func TestReprocessAllInBatches(t *testing.T) {
	s, n := newQuarantineServices(t)
	ids := quarantineN(t, s, 20)
	service.SetQuarantineScanBudget(s, 7, 1<<20)

	calls, results, reprocessed, failing := runReprocessAll(t, s, "")
	if calls != 3 || len(results) != 20 || failing != 20 || reprocessed != 0 {
		t.Fatalf("still broken: %d calls, %d results, %d failing, %d reprocessed; want 3 calls and 20 still failing", calls, len(results), failing, reprocessed)
	}
	for i, r := range results {
		if r.GetId() != ids[i] || r.GetOutcome() != hookstreamv1.IngestOutcome_INGEST_OUTCOME_QUARANTINED {
			t.Errorf("result %d: %v, want %s still quarantined", i, r, ids[i])
		}
	}

	n.fixed.Store(true)
	_, results, reprocessed, failing = runReprocessAll(t, s, "other")
	if len(results) != 2 || reprocessed != 2 || failing != 0 {
		t.Errorf("source other: %d results, %d reprocessed, %d failing; want 2 reprocessed", len(results), reprocessed, failing)
	}
	_, results, reprocessed, _ = runReprocessAll(t, s, "")
	if len(results) != 18 || reprocessed != 18 {
		t.Errorf("after the fix: %d results, %d reprocessed; want 18", len(results), reprocessed)
	}
	if pending := flatten(listPages(t, s, &hookstreamv1.ListQuarantinedRequest{})); len(pending) != 0 {
		t.Errorf("%d entries still pending", len(pending))
	}
	all, err := s.Quarantine.ListQuarantined(context.Background(), &hookstreamv1.ListQuarantinedRequest{IncludeReprocessed: true, PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	// The budget is 7 entries a call, so page through.
	var done int
	for _, p := range listPages(t, s, &hookstreamv1.ListQuarantinedRequest{IncludeReprocessed: true}) {
		done += len(p.ids)
	}
	if done != 20 || len(all.GetRequests()) > 7 {
		t.Errorf("reprocessed entries listed: %d (first page %d), want 20 (at most 7 a page)", done, len(all.GetRequests()))
	}
	calls, results, _, _ = runReprocessAll(t, s, "")
	if len(results) != 0 || calls != 3 {
		t.Errorf("nothing pending: %d results in %d calls; want none in 3", len(results), calls)
	}
}

func TestDiscardQuarantined(t *testing.T) {
	s, _ := newQuarantineServices(t)
	ids := quarantineN(t, s, 3)
	ctx := context.Background()
	if _, err := s.Quarantine.DiscardQuarantined(ctx, &hookstreamv1.DiscardQuarantinedRequest{Id: ids[1]}); err != nil {
		t.Fatal(err)
	}
	if got := flatten(listPages(t, s, &hookstreamv1.ListQuarantinedRequest{IncludeReprocessed: true})); strings.Join(got, ",") != ids[0]+","+ids[2] {
		t.Errorf("after discard: %v, want %s and %s", got, ids[0], ids[2])
	}
	for name, call := range map[string]func() error{
		"discard again": func() error {
			_, err := s.Quarantine.DiscardQuarantined(ctx, &hookstreamv1.DiscardQuarantinedRequest{Id: ids[1]})
			return err
		},
		"discard unknown": func() error {
			_, err := s.Quarantine.DiscardQuarantined(ctx, &hookstreamv1.DiscardQuarantinedRequest{Id: "0123456789abcdef"})
			return err
		},
		"discard invalid key": func() error {
			_, err := s.Quarantine.DiscardQuarantined(ctx, &hookstreamv1.DiscardQuarantinedRequest{Id: "a b*>"})
			return err
		},
		"reprocess discarded": func() error {
			_, err := s.Quarantine.ReprocessQuarantined(ctx, &hookstreamv1.ReprocessQuarantinedRequest{Id: ids[1]})
			return err
		},
	} {
		if err := call(); status.Code(err) != codes.NotFound || reasonOf(err) != service.ReasonEntryNotFound {
			t.Errorf("%s: %v, want NOT_FOUND %s", name, err, service.ReasonEntryNotFound)
		}
	}
	// The same request delivered again is quarantined again.
	resp, err := s.Ingest.IngestWebhook(ctx, &hookstreamv1.IngestWebhookRequest{Source: "chat", Body: &httpbody.HttpBody{Data: closedAt(1)}})
	if err != nil || resp.GetQuarantineId() != ids[1] {
		t.Errorf("redelivery after discard: %v %v, want entry %s", resp, err, ids[1])
	}
}

// Bodies are text when valid UTF-8, bytes otherwise; either reprocesses.
func TestQuarantineBodyView(t *testing.T) {
	s, n := newQuarantineServices(t)
	ctx := context.Background()
	binary := []byte("{\"eventType\": \"\xff\xfe\"}")
	text := closedAt(1)
	var ids []string
	for _, body := range [][]byte{binary, text} {
		resp, err := s.Ingest.IngestWebhook(ctx, &hookstreamv1.IngestWebhookRequest{Source: "chat", Body: &httpbody.HttpBody{Data: body}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, resp.GetQuarantineId())
	}
	list, err := s.Quarantine.ListQuarantined(ctx, &hookstreamv1.ListQuarantinedRequest{})
	if err != nil || len(list.GetRequests()) != 2 {
		t.Fatalf("list: %v %v", list, err)
	}
	bin, txt := list.GetRequests()[0], list.GetRequests()[1]
	if string(bin.GetBody()) != string(binary) || bin.GetBodyText() != "" {
		t.Errorf("binary entry: body %q body_text %q, want the bytes in body only", bin.GetBody(), bin.GetBodyText())
	}
	if !strings.Contains(txt.GetBodyText(), `"eventType": "ThreadClosedEvent"`) || len(txt.GetBody()) != 0 {
		t.Errorf("text entry: body %q body_text %q, want the text in body_text only", txt.GetBody(), txt.GetBodyText())
	}
	n.fixed.Store(true)
	res, err := s.Quarantine.ReprocessQuarantined(ctx, &hookstreamv1.ReprocessQuarantinedRequest{Id: ids[1]})
	if err != nil || res.GetResult().GetOutcome() != hookstreamv1.IngestOutcome_INGEST_OUTCOME_ACCEPTED {
		t.Errorf("reprocess the text entry: %v %v", res, err)
	}
	res, err = s.Quarantine.ReprocessQuarantined(ctx, &hookstreamv1.ReprocessQuarantinedRequest{Id: ids[0]})
	if err != nil || res.GetResult().GetRejection().GetCode() != hookstreamv1.RejectionCode_REJECTION_CODE_INVALID_UTF8 {
		t.Errorf("reprocess the binary entry: %v %v, want it rejected for its bytes", res, err)
	}
}

// swapped stands for a source whose vendor was set wrong and then fixed in
// the config: until the swap it is the first normalizer, then the second.
type swapped struct {
	normalize.Normalizer
	next    normalize.Normalizer
	swapped atomic.Bool
}

func (s *swapped) now() normalize.Normalizer {
	if s.swapped.Load() {
		return s.next
	}
	return s.Normalizer
}

func (s *swapped) Normalize(in normalize.Input) (*hookstreamv1.Event, error) {
	return s.now().Normalize(in)
}
func (s *swapped) SecretMembers() []string { return s.now().SecretMembers() }

// A request quarantined under the wrong vendor (whose secret members differ)
// and reprocessed once the vendor is fixed is scrubbed for the vendor it
// has now: Closer's apiKey is in neither the event nor its raw request.
func TestReprocessScrubsForTheSourceAsItIsNow(t *testing.T) {
	v, err := normalize.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	n := &swapped{Normalizer: pipedrive.New(v), next: closer.New(v)}
	s, _ := newServicesKeepRaw(t, true, service.Source{Name: "swap", Vendor: hookstreamv1.Vendor_VENDOR_CLOSER, Auth: auth.None(), Normalizer: n})
	ctx := context.Background()
	resp, err := s.Ingest.IngestWebhook(ctx, &hookstreamv1.IngestWebhookRequest{Source: "swap", Body: &httpbody.HttpBody{Data: []byte(closedBody)}})
	if err != nil || resp.GetOutcome() != hookstreamv1.IngestOutcome_INGEST_OUTCOME_QUARANTINED {
		t.Fatalf("ingest under the wrong vendor: %v %v, want quarantined", resp, err)
	}
	n.swapped.Store(true)
	r, err := s.Quarantine.ReprocessQuarantined(ctx, &hookstreamv1.ReprocessQuarantinedRequest{Id: resp.GetQuarantineId()})
	if err != nil || r.GetResult().GetOutcome() != hookstreamv1.IngestOutcome_INGEST_OUTCOME_ACCEPTED {
		t.Fatalf("reprocess: %v %v", r, err)
	}
	got, err := s.Events.GetEvent(ctx, &hookstreamv1.GetEventRequest{Id: r.GetResult().GetEventId(), IncludeRaw: true})
	if err != nil {
		t.Fatal(err)
	}
	text := prototext.Format(got.GetEvent())
	if strings.Contains(text, "api-key-secret") {
		t.Errorf("the reprocessed event holds Closer's apiKey:\n%s", text)
	}
	if !strings.Contains(got.GetEvent().GetRaw().GetBodyText(), normalize.Redacted) {
		t.Errorf("raw request not scrubbed: %q", got.GetEvent().GetRaw().GetBodyText())
	}
}
