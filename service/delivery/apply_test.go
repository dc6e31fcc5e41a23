package delivery

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/delivery/webhook"
	"github.com/hookstream/hookstream/service/eventlog"
	"github.com/hookstream/hookstream/service/filter"
)

// TestApplyBeforeAnswer: Engine.Apply returns only once this replica's
// worker runs with the stored change (a pause, a new filter), not a
// moment later when the watch of the endpoints brings it; Deleted stops
// the worker before it returns.
func TestApplyBeforeAnswer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler)
	log, err := eventlog.Open(ctx, eventlog.Config{DataDir: t.TempDir()}, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(log.Close)
	store, err := OpenStore(ctx, log.JetStream(), StoreOptions{Plain: true, Max: 10, AttemptsRetention: time.Hour, DeadLetterRetention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	comp, err := filter.NewCompiler()
	if err != nil {
		t.Fatal(err)
	}
	never := make(chan struct{})
	e, err := Start(ctx, Options{
		Logger: logger, Log: log, Store: store, Metrics: NewMetrics(prometheus.NewRegistry()),
		Client: webhook.NewClient(webhook.Options{}),
		Compile: func(expr string) (*filter.Filter, string, error) {
			f, err := comp.Compile(expr)
			return f, "", err
		},
		Next:    func() (<-chan struct{}, uint64) { return never, 0 },
		Timeout: time.Second, Schedule: []time.Duration{time.Second}, DisableAfter: time.Hour,
		MaxInFlight: 1, MaxPending: 100, SecretOverlap: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Stop)

	ep := &Endpoint{Endpoint: &hookstreamv1.Endpoint{Id: "ep_apply", Url: "https://example.com/hook",
		State: hookstreamv1.EndpointState_ENDPOINT_STATE_ACTIVE}, Secrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, Expires: []time.Time{{}}}
	if err := e.Init(ctx, ep.Endpoint); err != nil {
		t.Fatal(err)
	}
	if err := store.Create(ctx, ep); err != nil {
		t.Fatal(err)
	}
	var w *worker
	for deadline := time.Now().Add(10 * time.Second); w == nil; {
		if time.Now().After(deadline) {
			t.Fatal("no worker started for the endpoint")
		}
		time.Sleep(10 * time.Millisecond)
		e.mu.Lock()
		w = e.workers[ep.Id]
		e.mu.Unlock()
	}
	for i, change := range []func(*Endpoint){
		func(x *Endpoint) { x.State = hookstreamv1.EndpointState_ENDPOINT_STATE_PAUSED },
		func(x *Endpoint) { x.Filter = `event.type == "lead.moved"` },
		func(x *Endpoint) { x.State = hookstreamv1.EndpointState_ENDPOINT_STATE_ACTIVE },
	} {
		updated, err := store.Update(ctx, ep.Id, func(x *Endpoint) error { change(x); return nil })
		if err != nil {
			t.Fatal(err)
		}
		e.Apply(ctx, ep.Id, updated.Revision)
		if got, _ := w.applied(); got < updated.Revision {
			t.Fatalf("change %d: Apply returned with the worker at revision %d, want %d", i, got, updated.Revision)
		}
	}
	if err := store.Delete(ctx, ep.Id); err != nil {
		t.Fatal(err)
	}
	e.Deleted(ep.Id)
	if !w.exited() {
		t.Fatal("Deleted returned with the worker still running")
	}
}
