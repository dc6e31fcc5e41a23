package delivery

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/eventlog"
)

// TestApplyBeforeAnswer: Engine.Apply returns only once this replica's
// worker runs with the stored change (a pause, a new filter), not a
// moment later when the watch of the endpoints brings it; Deleted stops
// the worker before it returns.
func TestApplyBeforeAnswer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log, store := openTestLog(t)
	e := startTestEngine(t, log, store)

	ep := &Endpoint{Endpoint: &hookstreamv1.Endpoint{Id: "ep_apply", Url: "https://example.com/hook",
		State: hookstreamv1.EndpointState_ENDPOINT_STATE_ACTIVE}, Secrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, Expires: []time.Time{{}}}
	if err := e.Init(ctx, ep.Endpoint); err != nil {
		t.Fatal(err)
	}
	if err := store.Create(ctx, ep); err != nil {
		t.Fatal(err)
	}
	_, w := workerOf(t, ep.Id, e)
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
	e.Deleted(ctx, ep.Id)
	if !w.exited() {
		t.Fatal("Deleted returned with the worker still running")
	}
}

// TestApplyOnAnotherReplica: with two replicas (two engines on one
// JetStream), Apply on the one that does not deliver the endpoint returns
// only once the other's worker runs with the change, and Deleted once it
// has stopped.
func TestApplyOnAnotherReplica(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log, store := openTestLog(t)
	engines := []*Engine{startTestEngine(t, log, store), startTestEngine(t, log, store)}
	ep := &Endpoint{Endpoint: &hookstreamv1.Endpoint{Id: "ep_remote", Url: "https://example.com/hook",
		State: hookstreamv1.EndpointState_ENDPOINT_STATE_ACTIVE}, Secrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, Expires: []time.Time{{}}}
	if err := engines[0].Init(ctx, ep.Endpoint); err != nil {
		t.Fatal(err)
	}
	if err := store.Create(ctx, ep); err != nil {
		t.Fatal(err)
	}
	holder, w := workerOf(t, ep.Id, engines...)
	other := engines[1-holder]
	// The holder takes each change from its watch of the endpoints, which
	// goes through its lock: held a moment, it takes the change surely
	// after the call on the other replica began.
	stall := func() {
		engines[holder].mu.Lock()
		time.AfterFunc(200*time.Millisecond, engines[holder].mu.Unlock)
	}
	for i, change := range []func(*Endpoint){
		func(x *Endpoint) { x.State = hookstreamv1.EndpointState_ENDPOINT_STATE_PAUSED },
		func(x *Endpoint) { x.Filter = `event.type == "lead.moved"` },
		func(x *Endpoint) { x.State = hookstreamv1.EndpointState_ENDPOINT_STATE_ACTIVE },
	} {
		began := time.Now()
		stall()
		updated, err := store.Update(ctx, ep.Id, func(x *Endpoint) error { change(x); return nil })
		if err != nil {
			t.Fatal(err)
		}
		other.Apply(ctx, ep.Id, updated.Revision)
		if got, _ := w.applied(); got < updated.Revision {
			t.Fatalf("change %d: Apply on the other replica returned with the worker at revision %d, want %d", i, got, updated.Revision)
		}
		if took := time.Since(began); took >= applyWait {
			t.Errorf("change %d: Apply took %s, the whole wait", i, took)
		}
	}
	stall()
	if err := store.Delete(ctx, ep.Id); err != nil {
		t.Fatal(err)
	}
	other.Deleted(ctx, ep.Id)
	if !w.exited() {
		t.Fatal("Deleted on the other replica returned with the worker still running")
	}
}

// startTestEngine starts a delivery engine (a replica) on log and store,
// one attempt in flight per endpoint.
func startTestEngine(t *testing.T, log *eventlog.Log, store *Store) *Engine {
	t.Helper()
	return startLoopbackEngine(t, log, store, func(o *Options) {
		o.Timeout, o.MaxInFlight, o.MaxPending = time.Second, 1, 100
	})
}

// workerOf waits for one of engines to run the endpoint's worker.
func workerOf(t *testing.T, id string, engines ...*Engine) (int, *worker) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for i, e := range engines {
			e.mu.Lock()
			w := e.workers[id]
			e.mu.Unlock()
			if w != nil {
				return i, w
			}
		}
	}
	t.Fatal("no worker started for the endpoint")
	return 0, nil
}

// openTestLog opens an event log (embedded JetStream in a temporary
// directory) and delivery's store on it.
func openTestLog(t testing.TB) (*eventlog.Log, *Store) {
	t.Helper()
	ctx := context.Background()
	log, err := eventlog.Open(ctx, eventlog.Config{DataDir: t.TempDir()}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(log.Close)
	store, err := OpenStore(ctx, log.JetStream(), StoreOptions{Plain: true, Max: 10, AttemptsRetention: time.Hour, DeadLetterRetention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return log, store
}

// TestSealedEndpointLeftToAReplicaWithTheKey: a replica whose
// delivery.secret_key is not the one that sealed an endpoint's secret
// cannot deliver to it; it gives the endpoint's lease up and leaves it to
// the replicas that have the key, instead of taking the lease back at
// once, for ever.
func TestSealedEndpointLeftToAReplicaWithTheKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log, _ := openTestLog(t)
	storeWith := func(key byte) *Store {
		s, err := OpenStore(ctx, log.JetStream(), StoreOptions{Key: bytes.Repeat([]byte{key}, 32), Max: 10,
			AttemptsRetention: time.Hour, DeadLetterRetention: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	withKey, other := storeWith(1), storeWith(2)
	fast := func(o *Options) { o.LeaseTTL = time.Second }
	wrong := startLoopbackEngine(t, log, other, fast)
	ep := &Endpoint{Endpoint: &hookstreamv1.Endpoint{Id: "ep_sealed", Url: "https://example.com/hook",
		State: hookstreamv1.EndpointState_ENDPOINT_STATE_ACTIVE}, Secrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, Expires: []time.Time{{}}}
	if err := wrong.Init(ctx, ep.Endpoint); err != nil {
		t.Fatal(err)
	}
	if err := withKey.Create(ctx, ep); err != nil {
		t.Fatal(err)
	}
	if _, w := workerOf(t, ep.Id, wrong); !waitExited(w, 5*time.Second) {
		t.Fatal("the replica without the key runs the endpoint's worker")
	}
	right := startLoopbackEngine(t, log, withKey, fast)
	deadline := time.Now().Add(15 * time.Second)
	for {
		right.mu.Lock()
		w := right.workers[ep.Id]
		right.mu.Unlock()
		if w != nil && !w.exited() {
			if rev, _ := w.applied(); rev > 0 {
				return // the replica with the key delivers it
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the replica with the key never took the endpoint over")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitExited(w *worker, d time.Duration) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if w.exited() {
			return true
		}
	}
	return false
}
