package delivery

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	otelcodes "go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/delivery/webhook"
	"github.com/hookstream/hookstream/service/eventlog"
	"github.com/hookstream/hookstream/service/filter"
	"github.com/hookstream/hookstream/service/tracing"
)

// Compile checks a filter and returns it with the one log subject it
// narrows reads to ("" for all), as Subscribe does.
type Compile func(expr string) (*filter.Filter, string, error)

// Options configure the engine.
type Options struct {
	Logger  *slog.Logger
	Log     *eventlog.Log
	Store   *Store
	Compile Compile
	// Next returns a channel closed when the log has an event after the
	// returned position (the service's hub).
	Next func() (<-chan struct{}, uint64)
	// Tap, when set, registers a function to be given each event the
	// service's hub passes on, in log order: the shared tail takes new
	// events from it instead of reading them from the log again.
	Tap     func(func(eventlog.Stored))
	Client  *webhook.Client
	Metrics *Metrics
	// Tracer makes a span per attempt (nil: tracing off).
	Tracer *tracing.Tracer

	Timeout       time.Duration
	Schedule      []time.Duration
	Jitter        float64
	DisableAfter  time.Duration
	MaxInFlight   int
	MaxPending    int
	SecretOverlap time.Duration
	// LeaseTTL is how long an endpoint's worker may be silent before
	// another replica takes the endpoint over (default 10s).
	LeaseTTL time.Duration

	// sendersIdle is how long a worker keeps senders with nothing to do
	// (default sendersIdle; tests shorten it).
	sendersIdle time.Duration
}

// Engine runs, on this replica, the workers of the endpoints whose lease
// it holds: each endpoint is delivered by one replica at a time.
type Engine struct {
	o      Options
	owner  string
	leases jetstream.KeyValue
	state  jetstream.KeyValue
	js     jetstream.JetStream

	mu      sync.Mutex
	workers map[string]*worker
	// passUntil holds endpoints this replica cannot deliver (their secret
	// is sealed with a key it does not have) and leaves their leases to
	// the other replicas until then; reconcile keeps it, under mu.
	passUntil map[string]time.Time
	shared    *shared
	tail      *tail
	rec       *recorder
	wg        sync.WaitGroup
	cancel    context.CancelFunc
	done      chan struct{}
}

// Sealed is how many endpoints this replica passed over lately because
// their signing secret is sealed with a key it does not have.
func (e *Engine) Sealed() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n, now := 0, time.Now()
	for _, until := range e.passUntil {
		if until.After(now) {
			n++
		}
	}
	return n
}

// Start creates the engine's buckets and begins watching endpoints.
func Start(ctx context.Context, o Options) (*Engine, error) {
	if o.LeaseTTL == 0 {
		o.LeaseTTL = 10 * time.Second
	}
	if o.sendersIdle == 0 {
		o.sendersIdle = sendersIdle
	}
	// An endpoint's checkpoint (about 80 bytes per pending event) must fit
	// one log message.
	if limit := int((o.Log.MaxMessageSize() - 64<<10) / 96); o.MaxPending > limit {
		o.Logger.Warn("lowering delivery.max_pending to what one checkpoint message holds", "max_pending", limit)
		o.MaxPending = limit
	}
	e := &Engine{o: o, owner: NewID("r_"), js: o.Store.js, workers: map[string]*worker{}, passUntil: map[string]time.Time{}, shared: newShared(), done: make(chan struct{})}
	var err error
	if e.rec, err = newRecorder(o.Store.js.Conn(), o.Logger, o.Metrics.recordsLost); err != nil {
		return nil, fmt.Errorf("delivery: attempts log: %w", err)
	}
	// Copies only: a lease's TTL is how long a replica holds one, not
	// something kept.
	for _, b := range []string{leasesBucket, stateBucket} {
		if err := o.Store.guard(ctx, "KV_"+b, eventlog.StreamLimits{Replicas: o.Store.replicas}); err != nil {
			return nil, err
		}
	}
	if e.leases, err = e.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: leasesBucket, Description: "which hookstream replica delivers each endpoint", History: 1,
		TTL: o.LeaseTTL, Storage: jetstream.FileStorage, Replicas: o.Store.replicas,
	}); err != nil {
		return nil, fmt.Errorf("delivery: bucket %s: %w", leasesBucket, err)
	}
	if e.state, err = e.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: stateBucket, Description: "hookstream delivery progress per endpoint", History: 1,
		Storage: jetstream.FileStorage, Replicas: o.Store.replicas,
	}); err != nil {
		return nil, fmt.Errorf("delivery: bucket %s: %w", stateBucket, err)
	}
	o.Metrics.countStoredDead(e.storedDeadLetters)
	rctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.tail = newTail(o.Log, o.Next, e.shared, o.Logger)
	if o.Tap != nil {
		o.Tap(e.tail.offer)
	}
	e.wg.Add(1)
	go func() { defer e.wg.Done(); e.tail.run(rctx, e.busy) }()
	go e.run(rctx)
	return e, nil
}

// Stop ends every worker (saving their progress) and the watch.
func (e *Engine) Stop() {
	e.cancel()
	<-e.done
	e.wg.Wait()
	// The last attempts' records, waiting to be written.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.rec.sync(ctx); err != nil {
		e.o.Logger.Warn("delivery: the last attempt records may not be stored", "err", err)
	}
}

// run keeps one worker per endpoint whose lease this replica holds: it
// rescans the endpoints on every change and every half lease.
func (e *Engine) run(ctx context.Context) {
	defer close(e.done)
	// The watch of endpoint changes (made on other replicas; this one's
	// reach its workers directly) is started again when it ends (the log
	// restarted, a cluster lost its leader), and every worker then reloads
	// its endpoint, in case it changed meanwhile.
	var changes <-chan jetstream.KeyValueEntry
	var watcher jetstream.KeyWatcher
	defer func() {
		if watcher != nil {
			_ = watcher.Stop()
		}
	}()
	watch := func(again bool) {
		w, err := e.o.Store.kv.WatchAll(ctx, jetstream.UpdatesOnly())
		if err != nil {
			if !again {
				e.o.Logger.Warn("delivery: cannot watch endpoints; polling them and trying again", "err", err)
			}
			return
		}
		watcher, changes = w, w.Updates()
		if again {
			e.o.Logger.Info("delivery: watching endpoint changes again")
			e.mu.Lock()
			for _, wk := range e.workers {
				wk.reload()
			}
			e.mu.Unlock()
		}
	}
	watch(false)
	t := time.NewTicker(e.o.LeaseTTL / 3)
	defer t.Stop()
	for {
		e.reconcile(ctx)
		select {
		case <-ctx.Done():
			e.stopAll()
			return
		case <-t.C:
			if changes == nil && ctx.Err() == nil {
				watch(true)
			}
		case ent, ok := <-changes:
			if !ok {
				e.o.Logger.Warn("delivery: the watch of endpoint changes ended; starting it again")
				_ = watcher.Stop()
				watcher, changes = nil, nil
				continue
			}
			if ent == nil {
				continue
			}
			if op := ent.Operation(); op == jetstream.KeyValueDelete || op == jetstream.KeyValuePurge {
				e.deleted(ent.Key())
				continue
			}
			e.changed(ent.Key())
		}
	}
}

// changed tells a running worker to reload its endpoint.
func (e *Engine) changed(id string) {
	e.mu.Lock()
	w := e.workers[id]
	e.mu.Unlock()
	if w != nil {
		w.reload()
	}
}

// deleted stops a deleted endpoint's worker at once, abandoning its
// requests in flight; it reports whether this replica ran one.
func (e *Engine) deleted(id string) bool {
	e.mu.Lock()
	w := e.workers[id]
	e.mu.Unlock()
	if w != nil {
		e.stopWorker(id, w, true)
	}
	return w != nil
}

// sealedPass is how long a replica leaves an endpoint whose secret it
// cannot unseal to the other replicas before it tries again.
const sealedPass = time.Minute

// reconcile starts workers for endpoints whose lease is free or ours,
// renews our leases, and stops workers whose endpoint or lease is gone.
func (e *Engine) reconcile(ctx context.Context) {
	e.mu.Lock()
	running := make(map[string]*worker, len(e.workers))
	for id, w := range e.workers {
		running[id] = w
	}
	e.mu.Unlock()
	// Leases first, each with its own deadline: a worker must not outlive
	// its lease because the list of endpoints, or another lease, was slow.
	// Only a lease that another replica changed is lost; a renewal that
	// merely failed is tried again, and meanwhile the worker fences itself
	// (worker.leased).
	for id, w := range running {
		if w.exited() {
			// The worker ended by itself: it could not load the endpoint
			// or its progress, or a checkpoint write lost its
			// compare-and-set. Renewing its lease would leave the endpoint
			// undelivered for good: give the lease up, and take the
			// endpoint anew below (or another replica does), from the
			// saved progress.
			if errors.Is(w.loadErr, ErrSecretSealed) {
				// Another replica may have the key: leave the endpoint to
				// it for a while rather than taking the lease back at once.
				// With the embedded log there is none: nothing delivers it.
				if e.o.Log.Embedded() {
					e.o.Logger.Error("delivery: an endpoint's signing secret is sealed with a key this server does not have: "+
						"nothing is delivered to it until the server runs with the delivery.secret_key that sealed it", "endpoint", id)
				} else {
					e.o.Logger.Warn("delivery: leaving an endpoint to replicas that have its secret's key", "endpoint", id,
						"for", sealedPass)
				}
				e.mu.Lock()
				e.passUntil[id] = time.Now().Add(sealedPass)
				e.mu.Unlock()
			} else {
				e.o.Logger.Warn("delivery: an endpoint's worker stopped; restarting it", "endpoint", id)
			}
			e.stopWorker(id, w, false)
			delete(running, id)
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := w.renew(rctx)
		cancel()
		switch {
		case err == nil:
		case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyNotFound):
			e.o.Logger.Warn("delivery: lost an endpoint's lease; another replica delivers it", "endpoint", id)
			w.halt(false)
			go e.stopWorker(id, w, false) // its drain must not hold up the other leases
			delete(running, id)
		default:
			e.o.Logger.Warn("delivery: cannot renew an endpoint's lease; trying again", "endpoint", id, "err", err)
		}
	}
	ids, err := e.endpointIDs(ctx)
	if err != nil {
		return
	}
	for id, w := range running {
		if ids[id] {
			continue
		}
		// Gone from the list: make sure it is deleted before its progress
		// is dropped.
		gctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := e.o.Store.Get(gctx, id)
		cancel()
		if errors.Is(err, ErrNotFound) {
			e.stopWorker(id, w, true)
			delete(running, id)
		}
	}
	now := time.Now()
	e.mu.Lock() // Sealed reads passUntil too
	for id, until := range e.passUntil {
		if !ids[id] || now.After(until) {
			delete(e.passUntil, id)
		}
	}
	passing := maps.Clone(e.passUntil)
	e.mu.Unlock()
	for id := range ids {
		if running[id] != nil || e.running(id) || !passing[id].IsZero() {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		rev, err := e.leases.Create(cctx, id, []byte(e.owner))
		cancel()
		if err != nil {
			continue // another replica holds it
		}
		e.startWorker(id, rev)
	}
}

// endpointIDs lists the endpoints; an error when the list may be
// incomplete (a listing cut short by its deadline ends without one).
func (e *Engine) endpointIDs(ctx context.Context) (map[string]bool, error) {
	lctx, cancel := context.WithTimeout(ctx, e.o.LeaseTTL/3)
	defer cancel()
	keys, err := e.o.Store.kv.ListKeys(lctx)
	if err != nil {
		return nil, err
	}
	ids := map[string]bool{}
	for k := range keys.Keys() {
		ids[k] = true
	}
	if err := lctx.Err(); err != nil {
		return nil, err
	}
	return ids, nil
}

// running says whether this replica has a worker for the endpoint.
func (e *Engine) running(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.workers[id] != nil
}

func (e *Engine) startWorker(id string, leaseRev uint64) {
	w := newWorker(e, id, leaseRev)
	e.mu.Lock()
	e.workers[id] = w
	e.mu.Unlock()
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		w.run()
	}()
}

// stopWorker stops a worker; deleted says its endpoint is gone, and with
// it its progress.
func (e *Engine) stopWorker(id string, w *worker, deleted bool) {
	w.stop(deleted)
	e.mu.Lock()
	if e.workers[id] == w {
		delete(e.workers, id)
	}
	e.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if deleted {
		_ = e.state.Purge(ctx, id)
		e.o.Metrics.forget(id)
	} else {
		// Its last records before the replica taking the endpoint over
		// writes any, so they stay in order.
		_ = e.rec.sync(ctx)
		e.o.Metrics.released(id)
	}
	_ = e.leases.Delete(ctx, id, jetstream.LastRevision(w.leaseRev.Load()))
}

func (e *Engine) stopAll() {
	e.mu.Lock()
	ws := make(map[string]*worker, len(e.workers))
	for id, w := range e.workers {
		ws[id] = w
	}
	e.mu.Unlock()
	var wg sync.WaitGroup
	for id, w := range ws {
		wg.Add(1)
		go func() { defer wg.Done(); e.stopWorker(id, w, false) }()
	}
	wg.Wait()
}

// busy says whether a worker runs on this replica.
func (e *Engine) busy() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.workers) > 0
}

// Wake makes the endpoint's worker (if on this replica) look at its
// endpoint and redrive requests now.
func (e *Engine) Wake(id string) { e.changed(id) }

// applyWait bounds how long Apply waits for a busy worker.
const applyWait = 2 * time.Second

// Apply makes a change of an endpoint, stored at revision rev, take
// effect before the caller answers: when this replica runs the
// endpoint's worker, the worker reloads the endpoint, and Apply returns
// once it runs with revision rev or later (a pause then sends nothing
// more but what was already in flight; a new filter decides every event
// the worker has not read yet). It waits at most applyWait, or until ctx
// ends. When another replica delivers the endpoint, its worker takes the
// change from its watch of the endpoints, and Apply waits (as long) until
// that worker's saved progress says it runs with rev.
func (e *Engine) Apply(ctx context.Context, id string, rev uint64) {
	e.mu.Lock()
	w := e.workers[id]
	e.mu.Unlock()
	if w == nil {
		e.applyElsewhere(ctx, id, rev)
		return
	}
	w.reload()
	timer := time.NewTimer(applyWait)
	defer timer.Stop()
	for {
		cur, changed := w.applied()
		if cur >= rev {
			return
		}
		select {
		case <-changed:
		case <-w.exitedCh:
			return
		case <-timer.C:
			e.o.Logger.Warn("delivery: an endpoint change is not applied yet; its worker is busy", "endpoint", id)
			return
		case <-ctx.Done():
			return
		}
	}
}

// applyElsewhere is Apply when this replica does not run the endpoint's
// worker: if another replica holds its lease, it waits for that worker's
// checkpoint to say it runs with revision rev or later. Without a lease
// no worker runs anywhere, and the next one loads the endpoint as stored.
func (e *Engine) applyElsewhere(ctx context.Context, id string, rev uint64) {
	e.waitOnDeliverer(ctx, id, e.state, "an endpoint change is not applied yet", func(ent jetstream.KeyValueEntry) bool {
		cp, err := decodeCheckpoint(ent.Value())
		return err == nil && cp.Applied >= rev
	})
}

// waitOnDeliverer waits, while another replica holds the lease of
// endpoint id, for an entry of key id in kv that done accepts: at most
// applyWait, or until ctx ends (then what, in a warning, says what was
// waited for).
func (e *Engine) waitOnDeliverer(ctx context.Context, id string, kv jetstream.KeyValue, what string, done func(jetstream.KeyValueEntry) bool) {
	ctx, cancel := context.WithTimeout(ctx, applyWait)
	defer cancel()
	lease, err := e.leases.Get(ctx, id)
	if err != nil || string(lease.Value()) == e.owner {
		return
	}
	watch, err := kv.Watch(ctx, id)
	if err != nil {
		return
	}
	defer func() { _ = watch.Stop() }()
	for {
		select {
		case ent, ok := <-watch.Updates():
			if !ok {
				return
			}
			if ent != nil && done(ent) { // nil: the current value came before
				return
			}
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				e.o.Logger.Warn("delivery: "+what+" on the replica delivering the endpoint", "endpoint", id)
			}
			return
		}
	}
}

// Deleted stops a deleted endpoint's worker on this replica at once,
// before the caller answers (the watch of the endpoints would, a moment
// later): nothing more is sent to it from here. When another replica
// delivers the endpoint, it waits (at most applyWait, or until ctx ends)
// for that replica's worker to stop, which gives up the endpoint's lease
// as it stops.
func (e *Engine) Deleted(ctx context.Context, id string) {
	if e.deleted(id) {
		return
	}
	e.waitOnDeliverer(ctx, id, e.leases, "a deleted endpoint's worker has not stopped yet", func(ent jetstream.KeyValueEntry) bool {
		op := ent.Operation()
		return op == jetstream.KeyValueDelete || op == jetstream.KeyValuePurge
	})
}

// wait is the jittered wait before attempt n+1 (n attempts made so far),
// and false when the schedule is exhausted.
func (e *Engine) wait(n int) (time.Duration, bool) {
	if n < 1 || n > len(e.o.Schedule) {
		return 0, false
	}
	d := e.o.Schedule[n-1]
	if j := e.o.Jitter; j > 0 && d > 0 {
		d = time.Duration(float64(d) * (1 + j*(2*rand.Float64()-1)))
	}
	return d, true
}

// Keys returns the signing keys of an endpoint's open secrets.
func Keys(secrets []string) ([][]byte, error) {
	keys := make([][]byte, 0, len(secrets))
	for _, s := range secrets {
		k, err := webhook.ParseSecret(s)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// TestEvent is the synthetic event SendTestEvent delivers.
func TestEvent(now time.Time) *hookstreamv1.Event {
	return &hookstreamv1.Event{
		Id: randomHex(), Source: "hookstream", Type: "hookstream.test", VendorType: "hookstream.test",
		OccurredAt: timestamppb.New(now), ReceivedAt: timestamppb.New(now),
		Subject: &hookstreamv1.Subject{Kind: "endpoint", Id: "test"},
	}
}

// Send makes one attempt of ev to ep now (a test delivery): signed,
// recorded in the attempts log, never retried.
func (e *Engine) Send(ctx context.Context, ep *Endpoint, ev *hookstreamv1.Event) (*hookstreamv1.DeliveryAttempt, error) {
	format := ep.GetFormat()
	if format == hookstreamv1.EndpointFormat_ENDPOINT_FORMAT_VENDOR_BODY {
		// A test event has no vendor body: it goes as event JSON.
		format = hookstreamv1.EndpointFormat_ENDPOINT_FORMAT_EVENT_JSON
	}
	body, ct, err := webhook.Encode(ev, format)
	if err != nil {
		return nil, err
	}
	req := request(ep, ev.GetId(), body, ct)
	res, _ := e.send(ctx, true, ep.Id, req, 1)
	a := attemptRecord(ep.Id, ev.GetId(), 1, "", req.Timestamp, res)
	a.Outcome = hookstreamv1.AttemptOutcome_ATTEMPT_OUTCOME_FAILED
	switch {
	case res.OK():
		a.Outcome = hookstreamv1.AttemptOutcome_ATTEMPT_OUTCOME_SUCCEEDED
	case res.Gone:
		// 410 asks never to be sent to again, whatever was sent: the
		// endpoint is disabled as a delivery's 410 disables it.
		reason := goneReason(time.Now())
		disabled, err := e.o.Store.Update(ctx, ep.Id, func(x *Endpoint) error {
			x.State, x.DisabledReason = hookstreamv1.EndpointState_ENDPOINT_STATE_DISABLED, reason
			return nil
		})
		if err != nil {
			e.o.Logger.WarnContext(ctx, "delivery: cannot disable endpoint after a 410 to its test event", "endpoint", ep.Id, "err", err)
		} else {
			a.Outcome = hookstreamv1.AttemptOutcome_ATTEMPT_OUTCOME_ENDPOINT_DISABLED
			e.Apply(ctx, ep.Id, disabled.Revision)
		}
	}
	e.recordAttempt(a, 0)
	// Written before the answer, so the attempt is listed at once.
	if err := e.rec.sync(ctx); err != nil {
		e.o.Logger.WarnContext(ctx, "delivery: a test event's attempt may not be recorded", "endpoint", ep.Id, "err", err)
	}
	return a, nil
}

// goneReason is the disabled reason of an endpoint whose receiver
// answered 410 Gone at now.
func goneReason(now time.Time) string {
	return "the receiver answered 410 Gone at " + now.UTC().Format(time.RFC3339)
}

// send makes attempt number n of req to endpoint. With tracing on and
// traced, the attempt is a span, a child of ctx's, and the receiver gets
// its trace context (traceparent); that span's context is returned for
// the attempt's log lines, invalid when there is none.
func (e *Engine) send(ctx context.Context, traced bool, endpoint string, req webhook.Request, n int) (webhook.Result, trace.SpanContext) {
	if !traced || !e.o.Tracer.Enabled() {
		return e.o.Client.Send(ctx, req), trace.SpanContext{}
	}
	ctx, span := e.o.Tracer.Start(ctx, tracing.SpanDeliveryAttempt, trace.SpanKindClient)
	defer span.End()
	req.Trace = tracing.FromContext(ctx)
	res := e.o.Client.Send(ctx, req)
	sc := span.SpanContext()
	if !span.IsRecording() {
		return res, sc
	}
	// The URL's host and port only: its path and query may hold the
	// receiver's own secrets.
	span.SetAttributes(tracing.AttrEndpointID.String(endpoint), tracing.AttrEventID.String(req.ID), tracing.AttrAttempt.Int(n),
		semconv.HTTPRequestMethodKey.String(http.MethodPost))
	if u, err := url.Parse(req.URL); err == nil {
		span.SetAttributes(semconv.ServerAddress(u.Hostname()))
		if port, err := strconv.Atoi(u.Port()); err == nil {
			span.SetAttributes(semconv.ServerPort(port))
		}
	}
	if res.Status != 0 {
		span.SetAttributes(semconv.HTTPResponseStatusCode(res.Status))
	}
	if !res.OK() {
		why := res.Err
		if why == "" {
			why = "HTTP " + strconv.Itoa(res.Status)
		}
		span.SetStatus(otelcodes.Error, why)
	}
	return res, sc
}

// request builds the signed request of an event's body for ep.
func request(ep *Endpoint, id string, body []byte, ct string) webhook.Request {
	now := time.Now()
	r := webhook.Request{URL: ep.GetUrl(), ID: id, Timestamp: now, Body: body, ContentType: ct,
		Keys: ep.signingKeys(now), Headers: ep.GetHeaders()}
	if b := ep.GetBasicAuth(); b != nil {
		r.BasicUser, r.BasicPassword = b.GetUsername(), ep.Password
	}
	return r
}

// signingKeys are the keys of the secrets that still sign at now. A worker
// keeps the endpoint it loaded until the endpoint changes, so a rotated-out
// secret's overlap must end here, at send time, not only when the endpoint
// is next read.
func (ep *Endpoint) signingKeys(now time.Time) [][]byte {
	var live [][]byte // nil until a key has expired: then ep.keys is copied
	for k, key := range ep.keys {
		switch {
		case k < len(ep.Expires) && !ep.Expires[k].IsZero() && !ep.Expires[k].After(now):
			if live == nil {
				live = append(make([][]byte, 0, len(ep.keys)), ep.keys[:k]...)
			}
		case live != nil:
			live = append(live, key)
		}
	}
	if live == nil {
		return ep.keys
	}
	return live
}

// Rotate makes a new newest secret; the others stop signing after
// overlap.
func Rotate(ep *Endpoint, overlap time.Duration) error {
	sec, err := webhook.NewSecret()
	if err != nil {
		return err
	}
	until := time.Now().Add(overlap)
	for i := range ep.Expires {
		if ep.Expires[i].IsZero() || ep.Expires[i].After(until) {
			ep.Expires[i] = until
		}
	}
	// Expired ones are dropped now rather than on the next read.
	var secs []string
	var exps []time.Time
	for i, s := range ep.Secrets {
		if overlap > 0 && ep.Expires[i].After(time.Now()) {
			secs, exps = append(secs, s), append(exps, ep.Expires[i])
		}
	}
	ep.Secrets = slices.Concat([]string{sec}, secs)
	ep.Expires = slices.Concat([]time.Time{{}}, exps)
	ep.Secret = sec
	ep.PreviousSecretExpireTime = nil
	if len(secs) > 0 {
		ep.PreviousSecretExpireTime = timestamppb.New(until)
	}
	return nil
}

// randomHex is a random event id, shaped like the log's ids.
func randomHex() string {
	b := make([]byte, 16)
	_, _ = crand.Read(b)
	return hex.EncodeToString(b)
}
