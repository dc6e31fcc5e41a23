package service_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service"
	"github.com/hookstream/hookstream/service/auth"
	"github.com/hookstream/hookstream/service/eventlog"
	"github.com/hookstream/hookstream/service/filter"
	"github.com/hookstream/hookstream/service/normalize"
	"github.com/hookstream/hookstream/service/normalize/closer"
)

// switchable is a normalizer whose "fix" can be switched on: then the
// subject's name comes out in upper case.
type switchable struct {
	normalize.Normalizer
	fixed atomic.Bool
}

func (f *switchable) Normalize(in normalize.Input) (*hookstreamv1.Event, error) {
	ev, err := f.Normalizer.Normalize(in)
	if err == nil && f.fixed.Load() {
		ev.Subject.Name = strings.ToUpper(ev.GetSubject().GetName()) + "!"
	}
	return ev, err
}

func newReplayServices(t *testing.T) (*service.Services, *switchable) {
	t.Helper()
	v, err := normalize.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	n := &switchable{Normalizer: closer.New(v)}
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
	s, err := service.New(service.Options{Logger: logger, Log: log, Filters: filters, KeepRaw: true, Sources: []service.Source{
		{Name: "chat", Vendor: hookstreamv1.Vendor_VENDOR_CLOSER, Auth: auth.None(), Normalizer: n},
		{Name: "other", Vendor: hookstreamv1.Vendor_VENDOR_CLOSER, Auth: auth.None(), Normalizer: n},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s, n
}

// replayAll runs a replay to its end and sums the counts.
func replayAll(t *testing.T, s *service.Services, req *hookstreamv1.ReplayNormalizationRequest) (calls int, sum *hookstreamv1.ReplayNormalizationResponse) {
	t.Helper()
	sum = &hookstreamv1.ReplayNormalizationResponse{}
	for {
		calls++
		resp, err := s.Admin.ReplayNormalization(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		sum.Scanned += resp.GetScanned()
		sum.Unchanged += resp.GetUnchanged()
		sum.Changed += resp.GetChanged()
		sum.Appended += resp.GetAppended()
		sum.CorrectionsSkipped += resp.GetCorrectionsSkipped()
		sum.Failed += resp.GetFailed()
		if resp.GetNextPageToken() == "" {
			return calls, sum
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

// A run pages in bounded batches, reads only its source, never reads its
// own appends, and a token is bound to the request it came from.
func TestReplayInBatches(t *testing.T) {
	t.Parallel()
	s, n := newReplayServices(t)
	service.SetReplayBatch(s, 4)
	chat := int32(0)
	for i := range 20 {
		src := "chat"
		if i%5 == 4 {
			src = "other"
		} else {
			chat++
		}
		resp, err := s.Ingest.IngestWebhook(context.Background(), &hookstreamv1.IngestWebhookRequest{Source: src, Body: &httpbody.HttpBody{Data: closedAt(i)}})
		if err != nil || resp.GetOutcome() != hookstreamv1.IngestOutcome_INGEST_OUTCOME_ACCEPTED {
			t.Fatalf("ingest %d: %v %v", i, resp, err)
		}
	}
	calls, dry := replayAll(t, s, &hookstreamv1.ReplayNormalizationRequest{Source: "chat", DryRun: true})
	if dry.GetScanned() != chat || dry.GetUnchanged() != chat || dry.GetChanged() != 0 || calls < 4 {
		t.Errorf("fix-free dry run: %v in %d calls, want %d unchanged in at least 4", dry, calls, chat)
	}
	n.fixed.Store(true)
	_, dry = replayAll(t, s, &hookstreamv1.ReplayNormalizationRequest{Source: "chat", DryRun: true})
	if dry.GetChanged() != chat || dry.GetAppended() != 0 {
		t.Errorf("dry run after the fix: %v, want %d changed, none appended", dry, chat)
	}
	_, run := replayAll(t, s, &hookstreamv1.ReplayNormalizationRequest{Source: "chat"})
	if run.GetChanged() != chat || run.GetAppended() != chat || run.GetScanned() != chat || run.GetCorrectionsSkipped() != 0 {
		t.Errorf("replay: %v, want %d scanned, changed and appended, its own appends not read", run, chat)
	}
	_, again := replayAll(t, s, &hookstreamv1.ReplayNormalizationRequest{Source: "chat"})
	if again.GetAppended() != 0 || again.GetCorrectionsSkipped() != chat || again.GetChanged() != chat {
		t.Errorf("second replay: %v, want nothing appended, %d corrections skipped", again, chat)
	}

	// A token from a dry run does not continue a real run.
	first, err := s.Admin.ReplayNormalization(context.Background(), &hookstreamv1.ReplayNormalizationRequest{Source: "chat", DryRun: true})
	if err != nil || first.GetNextPageToken() == "" {
		t.Fatalf("first batch: %v %v", first, err)
	}
	_, err = s.Admin.ReplayNormalization(context.Background(), &hookstreamv1.ReplayNormalizationRequest{Source: "chat", PageToken: first.GetNextPageToken()})
	if reasonOf(err) != service.ReasonInvalidPageToken {
		t.Errorf("dry-run token on a real run: %v, want %s", err, service.ReasonInvalidPageToken)
	}
	_, err = s.Admin.ReplayNormalization(context.Background(), &hookstreamv1.ReplayNormalizationRequest{Source: "nope"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("unknown source: %v, want NOT_FOUND", err)
	}
}
