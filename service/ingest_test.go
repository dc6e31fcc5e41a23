package service_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/api/httpbody"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service"
	"github.com/hookstream/hookstream/service/auth"
	"github.com/hookstream/hookstream/service/eventlog"
	"github.com/hookstream/hookstream/service/filter"
	"github.com/hookstream/hookstream/service/normalize"
	"github.com/hookstream/hookstream/service/normalize/closer"
)

// A vendor that hangs up while its webhook is being appended must not
// cancel the append or be reported as an unavailable log: the event is
// stored (its retry is then a duplicate), the hang-up is counted on its own
// and logged below the error level.
func TestCallerGoneDoesNotCancelAppend(t *testing.T) {
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	log, err := eventlog.Open(context.Background(), eventlog.Config{DataDir: t.TempDir()}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(log.Close)
	filters, err := filter.NewCompiler()
	if err != nil {
		t.Fatal(err)
	}
	v, err := normalize.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	s, err := service.New(service.Options{
		Logger: logger, Log: log, Filters: filters, Metrics: service.NewMetrics(reg),
		Sources: []service.Source{{Name: "chat", Vendor: hookstreamv1.Vendor_VENDOR_CLOSER, Auth: auth.None(), Normalizer: closer.New(v)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)

	gone, cancel := context.WithCancel(context.Background())
	cancel() // the caller is gone before the append starts
	req := &hookstreamv1.IngestWebhookRequest{Source: "chat", Body: &httpbody.HttpBody{Data: []byte(closedBody)}}
	resp, err := s.Ingest.IngestWebhook(gone, req)
	if err != nil || resp.GetOutcome() != hookstreamv1.IngestOutcome_INGEST_OUTCOME_ACCEPTED {
		t.Fatalf("ingest with a gone caller: %v, %v; want accepted", resp, err)
	}
	if _, _, err := log.Get(context.Background(), resp.GetEventId(), eventlog.GetOptions{}); err != nil {
		t.Fatalf("event not stored: %v", err)
	}
	again, err := s.Ingest.IngestWebhook(context.Background(), req)
	if err != nil || !again.GetDuplicate() {
		t.Errorf("vendor retry: %v, %v; want a duplicate", again, err)
	}

	for outcome, want := range map[string]float64{"accepted": 1, "duplicate": 1, "unavailable": 0} {
		if got := counterSum(t, reg, "hookstream_webhook_requests_total", "outcome", outcome); got != want {
			t.Errorf("outcome %s counted %v times, want %v", outcome, got, want)
		}
	}
	if got := counterSum(t, reg, "hookstream_webhook_client_gone_total", "source", "chat"); got != 1 {
		t.Errorf("client_gone = %v, want 1", got)
	}
	if out := logs.String(); strings.Contains(out, "level=ERROR") || !strings.Contains(out, "caller went away") {
		t.Errorf("logs: want the hang-up at debug and no error, got:\n%s", out)
	}
}

// lockedBuffer collects log output written from any goroutine.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// counterSum adds up the counters of family name whose label has value.
func counterSum(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}
