package delivery

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/delivery/webhook"
	"github.com/hookstream/hookstream/service/eventlog"
	"github.com/hookstream/hookstream/service/filter"
	"github.com/hookstream/hookstream/service/normalize/pipedrive"
)

// job is one matching event not yet delivered (or dead-lettered).
type job struct {
	seq      uint64
	id       string
	key      uint64       // ordering key: source, subject type and id
	attempts int          // attempts made in this round
	due      time.Time    // when the next attempt may go
	first    time.Time    // the round's first attempt, zero before it
	recv     time.Time    // when hookstream received the event
	ev       *sharedEvent // the event, while fresh; nil when it waits
	inflight bool
	errs     int // reads of the event that failed in a row (not attempts)
	idx      int // in the ready heap, -1 when not there
}

// result is the end of one attempt.
type result struct {
	j    *job
	res  webhook.Result
	sent time.Time
	gone bool // the log no longer holds the event
	// span is the attempt's span context, for the log lines about its
	// outcome; invalid when the attempt was not traced.
	span trace.SpanContext
	// unsendable says why the event cannot be encoded for the endpoint.
	unsendable error
	err        error // the log could not be read; no attempt was made
}

// worker delivers one endpoint on this replica, while it holds the
// endpoint's lease. One goroutine (run) owns its state; attempts run on
// its senders' goroutines and report back.
type worker struct {
	e        *Engine
	id       string
	leaseRev atomic.Uint64
	// renewed is when the lease was last taken or renewed (unix nanos):
	// the worker sends nothing once it is older than 2/3 of the lease's
	// life, so it never outlives its lease, even if renewals stall.
	renewed  atomic.Int64
	reloadCh chan struct{}
	// applied is the revision of the endpoint the worker last loaded;
	// appliedCh is closed (and replaced) each time it is set (Engine.Apply
	// waits on it).
	appliedMu  sync.Mutex
	appliedRev uint64
	appliedCh  chan struct{}
	stopCh     chan struct{}
	stopOnce   sync.Once
	deleted    atomic.Bool
	exitedCh   chan struct{}
	// loadErr is why the worker could not start, set before exitedCh
	// closes.
	loadErr error

	ep      *Endpoint
	f       *filter.Filter
	subject string
	limiter *rate.Limiter
	ctx     context.Context
	cancel  context.CancelFunc

	cursor uint64 // every event up to here is delivered or in jobs
	// logID is the incarnation of the log the cursor and the jobs'
	// positions belong to (eventlog.Log.Incarnation).
	logID    string
	caughtUp bool
	jobs     map[uint64]*job
	ready    readyHeap
	keys     map[uint64][]*job // per-subject queues, in log order
	inflight int
	fresh    int // jobs read but not attempted yet, holding their event
	results  chan result
	// starts hands attempts to the worker's senders: goroutines kept
	// while the endpoint is busy, as many as attempts were in flight at
	// once. An attempt so starts no goroutine, and its stack is mostly
	// grown already to the depth of an HTTP request (a goroutine started
	// per attempt grew it every time). Closing it ends the senders: when
	// run ends, and when none has had an attempt for sendersIdle (see
	// retireSenders).
	starts    chan start
	senders   int
	lastStart time.Time
	// liveSenders counts the senders' goroutines, exited ones excluded
	// (senders counts those started on the current starts channel).
	liveSenders  atomic.Int32
	failingSince time.Time
	// failWarned is when the worker last logged that every attempt fails
	// (zero: not since the endpoint last delivered).
	failWarned time.Time
	redriveSeq uint64
	stateRev   uint64
	saving     bool // a checkpoint write is in flight
	saveDone   chan saveResult
	lost       bool // another replica wrote the checkpoint
	dirty      bool
	lastSave   time.Time
	// saved is what the last checkpoint held, for the gauges: they are
	// refreshed every second from it, so an endpoint that changes nothing
	// for hours (a retry due in 2 h, a paused endpoint) still shows its
	// oldest event getting older and its lag growing.
	savedPending int
	savedOldest  time.Time
	savedCursor  uint64
	savedOnce    bool
}

func newWorker(e *Engine, id string, leaseRev uint64) *worker {
	w := &worker{e: e, id: id, reloadCh: make(chan struct{}, 1), appliedCh: make(chan struct{}), stopCh: make(chan struct{}), exitedCh: make(chan struct{}),
		jobs: map[uint64]*job{}, keys: map[uint64][]*job{}, results: make(chan result, 64), starts: make(chan start), saveDone: make(chan saveResult, 1)}
	w.leaseRev.Store(leaseRev)
	w.renewed.Store(time.Now().UnixNano())
	w.ctx, w.cancel = context.WithCancel(context.Background())
	return w
}

func (w *worker) reload() {
	select {
	case w.reloadCh <- struct{}{}:
	default:
	}
}

// setApplied records that the worker has loaded revision rev of its
// endpoint, and wakes whoever waits for it.
func (w *worker) setApplied(rev uint64) {
	w.appliedMu.Lock()
	defer w.appliedMu.Unlock()
	if rev > w.appliedRev {
		w.appliedRev = rev
		close(w.appliedCh)
		w.appliedCh = make(chan struct{})
	}
}

// applied is the revision the worker runs with, and a channel closed when
// that changes.
func (w *worker) applied() (uint64, <-chan struct{}) {
	w.appliedMu.Lock()
	defer w.appliedMu.Unlock()
	return w.appliedRev, w.appliedCh
}

// leased says whether the lease is surely still this replica's.
func (w *worker) leased() bool {
	return time.Since(time.Unix(0, w.renewed.Load())) < w.e.o.LeaseTTL*2/3
}

// renew extends the lease; an error means another replica has it.
func (w *worker) renew(ctx context.Context) error {
	rev, err := w.e.leases.Update(ctx, w.id, []byte(w.e.owner), w.leaseRev.Load())
	if err != nil {
		return err
	}
	w.leaseRev.Store(rev)
	w.renewed.Store(time.Now().UnixNano())
	return nil
}

// stop ends the worker. Requests in flight are abandoned, without
// counting as attempts: their jobs stay in the checkpoint as they were
// (unless the endpoint is deleted), so the next owner sends them again,
// with the same webhook-id. Shutdown therefore never waits for a slow
// receiver.
func (w *worker) stop(deleted bool) {
	w.halt(deleted)
	<-w.exitedCh
}

func (w *worker) halt(deleted bool) {
	w.stopOnce.Do(func() {
		w.deleted.Store(deleted)
		w.cancel()
		close(w.stopCh)
	})
}

// exited says whether the worker's loop has ended.
func (w *worker) exited() bool {
	select {
	case <-w.exitedCh:
		return true
	default:
		return false
	}
}

func (w *worker) logf(msg string, args ...any) {
	w.logAt(trace.SpanContext{}, msg, args...)
}

// logAt is logf in the trace of sc when sc is valid (an attempt's span,
// an event's stored trace context), so the line carries its trace and
// span ids (see tracing.LogHandler).
func (w *worker) logAt(sc trace.SpanContext, msg string, args ...any) {
	ctx := context.Background()
	if sc.IsValid() {
		ctx = trace.ContextWithSpanContext(ctx, sc)
	}
	w.e.o.Logger.WarnContext(ctx, msg, append([]any{"endpoint", w.id}, args...)...)
}

// storedSpan is the span context stored with an event (its append span),
// invalid when it has none or tracing is off; parsed only for a log line.
func (w *worker) storedSpan(se *sharedEvent) trace.SpanContext {
	if !w.e.o.Tracer.Enabled() || se.st.Trace.Parent == "" {
		return trace.SpanContext{}
	}
	return se.st.Trace.SpanContext()
}

func (w *worker) run() {
	defer close(w.exitedCh)
	defer w.cancel()
	// After drain: no attempt is in flight, so every sender is waiting.
	defer func() { close(w.starts) }()
	if err := w.load(); err != nil {
		if !errors.Is(err, ErrNotFound) {
			w.logf("delivery: cannot start endpoint", "err", err)
		}
		w.loadErr = err // read by the engine once exitedCh is closed
		return
	}
	poll := time.NewTicker(time.Second)
	defer poll.Stop()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	// The log is read when there may be something new: at start, after
	// the hub says an event was stored, while catching up, on reload and
	// on the poll; never just because an attempt ended, which would put a
	// log read between every result and the next dispatch.
	needRead := true
	var next <-chan struct{}
	for {
		if needRead && w.active() && w.wantEvents() {
			ch, _ := w.e.o.Next()
			if more, err := w.refill(); err != nil {
				needRead = false // the poll tries again within a second
				if w.ctx.Err() == nil {
					w.logf("delivery: cannot read the log; retrying", "err", err)
				}
			} else {
				needRead = !w.caughtUp
				if w.caughtUp {
					next = ch
					if more != nil {
						next = more
					}
				}
			}
		}
		w.dispatch()
		w.maybeSave(false)
		wake := w.nextWake()
		if needRead && w.active() && w.wantEvents() {
			wake = 0 // catching up: read on at once
		}
		timer.Reset(wake)
		select {
		case r := <-w.results:
			w.finish(r)
			// Results that came meanwhile are taken in the same turn, so
			// a busy endpoint pays for the loop's bookkeeping once per
			// batch rather than once per attempt.
			for more := true; more; {
				select {
				case r := <-w.results:
					w.finish(r)
				default:
					more = false
				}
			}
		case r := <-w.saveDone:
			w.saved(r)
		case <-next:
			next, needRead = nil, true
		case <-timer.C:
		case <-poll.C:
			needRead = true
			w.pollRedrives()
			w.refreshGauges()
			w.retireSenders(time.Now())
		case <-w.reloadCh:
			needRead = true
			w.reloadEndpoint()
			w.pollRedrives()
		case <-w.stopCh:
			w.drain()
			return
		}
	}
}

// drain waits for in-flight attempts, then saves progress (unless the
// endpoint is gone).
func (w *worker) drain() {
	for w.inflight > 0 {
		w.finish(<-w.results)
	}
	if !w.deleted.Load() {
		w.saveNow()
	} else if w.saving {
		<-w.saveDone
	}
}

func (w *worker) active() bool {
	return w.ep.GetState() == hookstreamv1.EndpointState_ENDPOINT_STATE_ACTIVE
}

// wantEvents says whether to read more of the log: enough fresh events
// are queued to keep the endpoint busy, and the pending cap is not hit.
func (w *worker) wantEvents() bool {
	return len(w.jobs) < w.e.o.MaxPending && w.fresh < 2*w.maxInFlight()+256
}

func (w *worker) maxInFlight() int {
	if n := int(w.ep.GetMaxInFlight()); n > 0 {
		return n
	}
	return w.e.o.MaxInFlight
}

func (w *worker) perSubject() bool {
	return w.ep.GetOrdering() == hookstreamv1.EndpointOrdering_ENDPOINT_ORDERING_PER_SUBJECT
}

// load reads the endpoint and its saved progress.
func (w *worker) load() error {
	ep, err := w.e.o.Store.Get(w.ctx, w.id)
	if err != nil {
		return err
	}
	if err := w.apply(ep); err != nil {
		return err
	}
	w.setApplied(ep.Revision)
	w.dirty = true // the checkpoint says which revision runs (see Engine.Apply)
	w.logID = w.e.o.Log.Incarnation()
	ent, err := w.e.state.Get(w.ctx, w.id)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		// Created before its start was recorded (a crash in between):
		// start now, and record it.
		cp := checkpoint{Applied: ep.Revision, Log: w.logID}
		if cp.Cursor, err = startCursor(w.ctx, w.e.o.Log, ep.Endpoint); err != nil {
			return err
		}
		if w.stateRev, err = w.e.state.Create(w.ctx, w.id, cp.encode()); err != nil {
			return fmt.Errorf("record start: %w", err)
		}
		w.cursor = cp.Cursor
		return nil
	case err != nil:
		return err
	}
	cp, err := decodeCheckpoint(ent.Value())
	if err != nil {
		return err
	}
	w.stateRev = ent.Revision()
	w.cursor, w.failingSince, w.redriveSeq = cp.Cursor, cp.FailingSince, cp.RedriveSeq
	for _, j := range cp.Jobs {
		w.add(j)
	}
	if cp.Log != "" && cp.Log != w.logID {
		cur := w.logID
		w.logID = cp.Log // what the cursor and the jobs belong to
		w.startOver(cur)
	}
	return nil
}

// startOver follows the log into a new incarnation: its stream was
// deleted and created again, so positions start over. The cursor goes to
// the new stream's beginning, so every event stored in it is delivered
// (one delivered from the old stream already and stored again is sent
// again, with the same webhook-id). Jobs of the old stream are dropped:
// their events went with it, and their positions now name other events.
// Attempts in flight end as attempts of jobs gone meanwhile (see finish).
func (w *worker) startOver(logID string) {
	w.logf("delivery: the event stream was replaced; delivering the new one from its beginning",
		"was", w.logID, "now", logID, "cursor_was", w.cursor, "dropped_jobs", len(w.jobs))
	w.logID, w.cursor, w.caughtUp, w.dirty = logID, 0, false, true
	w.jobs, w.keys, w.ready, w.fresh = map[uint64]*job{}, map[uint64][]*job{}, nil, 0
}

// apply makes ep the endpoint's current settings.
func (w *worker) apply(ep *Endpoint) error {
	if w.ep == nil || w.ep.GetFilter() != ep.GetFilter() {
		f, subject, err := w.e.o.Compile(ep.GetFilter())
		if err != nil {
			return fmt.Errorf("filter: %w", err)
		}
		w.f, w.subject = f, subject
		w.caughtUp = false
	}
	if rl := ep.GetRateLimit(); rl > 0 {
		if w.limiter == nil || float64(w.limiter.Limit()) != rl {
			w.limiter = rate.NewLimiter(rate.Limit(rl), max(1, int(rl)))
		}
	} else {
		w.limiter = nil
	}
	reorder := w.ep != nil && w.ep.GetOrdering() != ep.GetOrdering()
	wasActive := w.ep != nil && w.active()
	w.ep = ep
	w.e.o.Metrics.endpointState(w.id, ep.GetState())
	if !wasActive && w.active() {
		w.failingSince, w.failWarned = time.Time{}, time.Time{}
		w.dirty = true
	}
	if reorder {
		w.rebuild()
	}
	return nil
}

func (w *worker) reloadEndpoint() {
	ep, err := w.e.o.Store.Get(w.ctx, w.id)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			w.logf("delivery: cannot reload endpoint", "err", err)
		}
		return // the engine stops a deleted endpoint's worker
	}
	if err := w.apply(ep); err != nil {
		w.logf("delivery: endpoint change not applied", "err", err)
	}
	// Seen, applied or not: Engine.Apply waits no longer, here or (once
	// the checkpoint says so) on another replica.
	if cur, _ := w.applied(); ep.Revision > cur {
		w.dirty = true
	}
	w.setApplied(ep.Revision)
}

// rebuild re-queues every job after an ordering change.
func (w *worker) rebuild() {
	old := w.jobs
	w.jobs, w.keys, w.ready, w.fresh = map[uint64]*job{}, map[uint64][]*job{}, nil, 0
	for _, j := range sortedJobs(old) {
		j.idx = -1
		w.add(j)
	}
}

// add queues a job: ready at once, or behind its subject's head.
func (w *worker) add(j *job) {
	j.idx = -1
	w.jobs[j.seq] = j
	if j.ev != nil {
		w.fresh++
	}
	w.dirty = true
	if w.perSubject() {
		q := w.keys[j.key]
		w.keys[j.key] = append(q, j)
		if len(q) > 0 {
			w.release(j) // waits behind the head without its event
			return
		}
	}
	if !j.inflight {
		heap.Push(&w.ready, j)
	}
}

// release drops a waiting job's copy of its event (re-read when due).
func (w *worker) release(j *job) {
	if j.ev != nil {
		j.ev = nil
		w.fresh--
	}
}

// done removes a delivered or dead-lettered job and lets its subject's
// next job go.
func (w *worker) done(j *job) {
	delete(w.jobs, j.seq)
	w.release(j)
	w.dirty = true
	if !w.perSubject() {
		return
	}
	q := w.keys[j.key]
	for i, x := range q {
		if x == j {
			q = append(q[:i], q[i+1:]...)
			break
		}
	}
	if len(q) == 0 {
		delete(w.keys, j.key)
		return
	}
	w.keys[j.key] = q
	if h := q[0]; h.idx < 0 && !h.inflight {
		heap.Push(&w.ready, h)
	}
}

// refill takes the next events: from the shared tail when it covers
// the cursor (then more is closed when the tail grows), else by reading
// the log.
func (w *worker) refill() (more <-chan struct{}, err error) {
	if cur := w.e.o.Log.Incarnation(); cur != w.logID {
		w.startOver(cur)
	}
	n := min(512, w.e.o.MaxPending-len(w.jobs))
	if evs, more, ok := w.e.tail.after(w.logID, w.cursor, n); ok {
		for _, se := range evs {
			w.consider(se)
		}
		w.caughtUp = len(evs) < n
		return more, nil
	}
	ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
	defer cancel()
	tailStart := w.e.tail.startPos(w.logID)
	b, err := w.e.o.Log.ReadBatch(ctx, eventlog.Start{AfterSeq: w.cursor}, w.subject, n, 1<<20)
	if err != nil {
		return nil, err
	}
	for _, st := range b.Events {
		w.consider(w.e.shared.get(w.logID, st))
	}
	w.caughtUp = len(b.Events) == 0 || b.Pending == 0
	if w.caughtUp && tailStart > w.cursor {
		// Every event up to the log's head that the subject could match
		// was read: the cursor may skip the rest, and the worker joins
		// the shared tail instead of reading the log for every event.
		w.cursor, w.dirty = tailStart, true
	}
	return nil, nil
}

// consider queues the event when it matches the filter, and moves the
// cursor past it. The filter alone decides (the subject that narrows log
// reads is implied by it), so events from the tail, which holds every
// subject, are judged like those read for this endpoint.
func (w *worker) consider(se *sharedEvent) {
	seq := se.st.Seq
	if seq <= w.cursor {
		return
	}
	w.cursor = seq
	w.dirty = true
	// A filter needs the decoded event; without one, what about keeps
	// is enough.
	in, err := se.about()
	var ev *hookstreamv1.Event
	if err == nil && !w.f.Empty() {
		ev, err = se.event()
	}
	if err != nil {
		w.logAt(w.storedSpan(se), "delivery: skipping an event that does not decode", "cursor", seq, "err", err)
		return
	}
	if ev != nil {
		ok, err := w.f.Match(ev)
		if err != nil {
			w.filterFailed(se, ev, err)
			return
		}
		if !ok {
			return
		}
	}
	w.add(&job{seq: seq, id: in.id, key: in.key, recv: in.recv, ev: se, due: time.Now()})
}

// filterFailed records an event the endpoint's filter could not judge
// (it failed at run time on this event, e.g. past its cost limit): not
// sent, and not dropped unseen either. It becomes a dead letter at once,
// with a record (attempt 0, no request made) saying why, so it is listed,
// counted and can be redriven (a redrive sends it without the filter)
// once the filter is fixed.
func (w *worker) filterFailed(se *sharedEvent, ev *hookstreamv1.Event, ferr error) {
	seq := se.st.Seq
	j := &job{seq: seq, id: ev.GetId(), key: orderingKey(ev), recv: ev.GetReceivedAt().AsTime(), ev: se}
	a := attemptRecord(w.id, j.id, 0, eventlog.Cursor(seq), time.Now(),
		webhook.Result{Err: "not sent: the endpoint's filter failed on this event: " + ferr.Error()})
	a.Outcome = hookstreamv1.AttemptOutcome_ATTEMPT_OUTCOME_DEAD_LETTERED
	w.e.recordAttempt(a, seq)
	sc := w.storedSpan(se)
	w.logAt(sc, "delivery: the endpoint's filter failed on an event; it is a dead letter", "event_id", j.id, "cursor", seq, "err", ferr)
	if err := w.storeDead(j, a, "filter_failed"); err != nil {
		w.logAt(sc, "delivery: cannot store the dead letter of an event the filter failed on", "event_id", j.id, "cursor", seq, "err", err)
	}
}

// storeDead stores j as a dead letter whose last record is last, and
// counts it under outcome.
func (w *worker) storeDead(j *job, last *hookstreamv1.DeliveryAttempt, outcome string) error {
	ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
	defer cancel()
	if err := w.e.storeDeadLetter(ctx, w.id, j, last); err != nil {
		return err
	}
	w.e.o.Metrics.delivered(w.id, outcome)
	w.e.o.Metrics.deadLetters.WithLabelValues(w.id).Inc()
	return nil
}

// orderingKey names an event's subject: source, subject type and id.
func orderingKey(ev *hookstreamv1.Event) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(ev.GetSource()))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(ev.GetSubject().GetKind()))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(ev.GetSubject().GetId()))
	return h.Sum64()
}

// dispatch starts the attempts that are due, within the endpoint's
// concurrency and rate.
func (w *worker) dispatch() {
	if !w.active() || !w.leased() {
		return
	}
	now := time.Now()
	for w.inflight < w.maxInFlight() && w.ready.Len() > 0 && !w.ready[0].due.After(now) {
		if w.limiter != nil && !w.limiter.AllowN(now, 1) {
			return
		}
		j := heap.Pop(&w.ready).(*job)
		j.inflight = true
		se := j.ev
		if se != nil {
			j.ev = nil
			w.fresh--
		}
		w.inflight++
		if w.senders < w.inflight {
			// Every sender is busy with an attempt still counted in
			// flight; one more is needed for this one.
			w.senders++
			go w.send(w.starts)
		}
		w.lastStart = now
		w.starts <- start{j: j, se: se, ep: w.ep, n: j.attempts + 1}
	}
}

// sendersIdle is how long a worker keeps senders that have had nothing to
// do: a burst (max_in_flight up to 1,000) does not leave its goroutines
// behind for the endpoint's lifetime, nor a paused endpoint its senders.
const sendersIdle = 30 * time.Second

// retireSenders ends the senders when no attempt is in flight and none
// started for sendersIdle, or when there are more than max_in_flight
// (it was lowered). With nothing in flight every sender waits on starts,
// so closing it ends them all; dispatch starts new ones on a new channel.
func (w *worker) retireSenders(now time.Time) {
	if w.inflight > 0 || w.senders == 0 || (now.Sub(w.lastStart) < w.e.o.sendersIdle && w.senders <= w.maxInFlight()) {
		return
	}
	close(w.starts)
	w.starts, w.senders = make(chan start), 0
}

// start is an attempt handed to a sender.
type start struct {
	j  *job
	se *sharedEvent
	ep *Endpoint
	n  int
}

// send is a sender: it makes the attempts dispatch hands it until run
// ends. There are at least as many senders as attempts in flight, and a
// sender takes the next attempt only once its last result is in results,
// so dispatch never waits long for one.
func (w *worker) send(starts <-chan start) {
	w.liveSenders.Add(1)
	defer w.liveSenders.Add(-1)
	for s := range starts {
		w.attempt(s.j, s.se, s.ep, s.n)
	}
}

// attempt makes delivery attempt number n of j to ep.
func (w *worker) attempt(j *job, se *sharedEvent, ep *Endpoint, n int) {
	r := result{j: j}
	defer func() { w.results <- r }()
	if se == nil {
		// The read is of the log as it is now: its incarnation, taken
		// first, labels it in the cache (a replacement in between is
		// caught by the id check below).
		logID := w.e.o.Log.Incarnation()
		ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
		st, err := w.e.o.Log.At(ctx, j.seq)
		cancel()
		switch {
		case errors.Is(err, eventlog.ErrGone):
			r.gone = true
			return
		case err != nil:
			r.err = err
			return
		}
		se = w.e.shared.get(logID, st)
	}
	in, err := se.about()
	if err != nil || j.id != "" && in.id != j.id {
		// Undecodable, or the position now holds another event (a dead
		// letter of a stream since replaced, redriven): this one is gone.
		r.gone = true
		return
	}
	body, ct, err := se.body(ep.GetFormat())
	if err != nil {
		// This event cannot be sent in this format, now or later.
		r.unsendable = err
		return
	}
	if pd := ep.GetPipedrive(); pd != nil && ep.GetFormat() == hookstreamv1.EndpointFormat_ENDPOINT_FORMAT_VENDOR_BODY &&
		in.vendor == hookstreamv1.Vendor_VENDOR_PIPEDRIVE {
		body = pipedrive.AsDelivered(body, strconv.FormatInt(pd.GetId(), 10), n)
	}
	req := request(ep, in.id, body, ct)
	r.sent = req.Timestamp
	// An event stored with a trace context (tracing was on when it came
	// in) has its attempts in that trace, children of its append.
	ctx, traced := w.ctx, se.st.Trace.Parent != "" && w.e.o.Tracer.Enabled()
	if traced {
		ctx = se.st.Trace.Remote(ctx)
	}
	r.res, r.span = w.e.send(ctx, traced, w.id, req, n)
}

// finish handles the end of an attempt.
func (w *worker) finish(r result) {
	j := r.j
	w.inflight--
	j.inflight = false
	if w.jobs[j.seq] != j || w.ctx.Err() != nil {
		return // gone meanwhile, or stopping: not an attempt
	}
	now := time.Now()
	if r.err != nil {
		// The log failed us, not the receiver: no attempt, and the next
		// try backs off up to 30 s.
		j.errs++
		w.logf("delivery: could not read an event to send; retrying", "cursor", j.seq, "err", r.err)
		j.due = now.Add(min(30*time.Second, time.Second<<min(j.errs, 5)))
		w.requeue(j)
		return
	}
	j.errs = 0
	j.attempts++
	if j.first.IsZero() {
		j.first = now
	}
	a := attemptRecord(w.id, j.id, j.attempts, eventlog.Cursor(j.seq), r.sent, r.res)
	if r.gone || r.unsendable != nil {
		a.Error = "the event is no longer in the log (retention)"
		if r.unsendable != nil {
			a.Error = "the event cannot be sent in the endpoint's format: " + r.unsendable.Error()
		}
		a.Outcome = hookstreamv1.AttemptOutcome_ATTEMPT_OUTCOME_DEAD_LETTERED
		w.e.recordAttempt(a, j.seq)
		w.deadLetter(j, a, r.span)
		return
	}
	m := w.e.o.Metrics
	m.attempt(w.id, r.res)
	if r.res.OK() {
		a.Outcome = hookstreamv1.AttemptOutcome_ATTEMPT_OUTCOME_SUCCEEDED
		w.e.recordAttempt(a, j.seq)
		m.delivered(w.id, "delivered")
		if !w.failWarned.IsZero() {
			w.e.o.Logger.Info("delivery: endpoint delivers again", "endpoint", w.id, "failed_for", now.Sub(w.failingSince).Round(time.Second))
		}
		w.failingSince, w.failWarned = time.Time{}, time.Time{}
		w.done(j)
		return
	}
	if w.failingSince.IsZero() {
		w.failingSince = now
	}
	w.warnFailing(now, r.res)
	var reason string
	switch {
	case r.res.Gone:
		reason = goneReason(now)
	case now.Sub(w.failingSince) >= w.e.o.DisableAfter:
		reason = fmt.Sprintf("every attempt failed since %s (delivery.disable_after %s)",
			w.failingSince.UTC().Format(time.RFC3339), w.e.o.DisableAfter)
	}
	// If the endpoint cannot be disabled (the store failed), the
	// schedule goes on.
	if reason != "" && w.disable(reason, r.span) {
		a.Outcome = hookstreamv1.AttemptOutcome_ATTEMPT_OUTCOME_ENDPOINT_DISABLED
		w.e.recordAttempt(a, j.seq)
		m.delivered(w.id, "endpoint_disabled")
		j.due = now // sent again when the endpoint is resumed
		w.requeue(j)
		return
	}
	wait, ok := w.e.wait(j.attempts)
	if !ok {
		a.Outcome = hookstreamv1.AttemptOutcome_ATTEMPT_OUTCOME_DEAD_LETTERED
		w.e.recordAttempt(a, j.seq)
		w.deadLetter(j, a, r.span)
		return
	}
	wait = max(wait, r.res.RetryAfter)
	j.due = now.Add(wait)
	a.Outcome = hookstreamv1.AttemptOutcome_ATTEMPT_OUTCOME_RETRYING
	a.NextAttemptTime = timestamppb.New(j.due)
	w.e.recordAttempt(a, j.seq)
	m.delivered(w.id, "retrying")
	w.requeue(j)
}

// Every attempt of an endpoint failing is logged once it has lasted
// failWarnAfter (a tenth of delivery.disable_after if that is shorter),
// then every failWarnEvery while it goes on, and its end when the
// endpoint delivers again: single failed attempts are not logged (the
// attempts log and the metrics have them), and a receiver that is down
// would otherwise show nothing until its events became dead letters.
const (
	failWarnAfter = time.Minute
	failWarnEvery = time.Hour
)

// warnFailing logs, at most every failWarnEvery, that every attempt has
// failed since w.failingSince; res is the latest.
func (w *worker) warnFailing(now time.Time, res webhook.Result) {
	after := min(failWarnAfter, w.e.o.DisableAfter/10)
	if now.Sub(w.failingSince) < after || !w.failWarned.IsZero() && now.Sub(w.failWarned) < failWarnEvery {
		return
	}
	w.failWarned = now
	w.logf("delivery: endpoint failing: every attempt has failed since "+w.failingSince.UTC().Format(time.RFC3339)+
		"; events are retried on delivery.retry_schedule, and the endpoint is disabled once this has lasted delivery.disable_after",
		"failing_for", now.Sub(w.failingSince).Round(time.Second), "disable_after", w.e.o.DisableAfter,
		"status", res.Status, "err", res.Err)
}

// requeue puts a job back for its next attempt; under PER_SUBJECT only
// its subject's oldest job is ever ready (done lets the next one go).
func (w *worker) requeue(j *job) {
	w.dirty = true
	if w.perSubject() {
		if q := w.keys[j.key]; len(q) > 0 && q[0] != j {
			return
		}
	}
	heap.Push(&w.ready, j)
}

// disable marks the endpoint disabled, with the reason; sc is the span
// of the attempt that made it, for the log line.
func (w *worker) disable(reason string, sc trace.SpanContext) bool {
	ctx, cancel := context.WithTimeout(w.ctx, 5*time.Second)
	defer cancel()
	ep, err := w.e.o.Store.Update(ctx, w.id, func(e *Endpoint) error {
		e.State = hookstreamv1.EndpointState_ENDPOINT_STATE_DISABLED
		e.DisabledReason = reason
		return nil
	})
	if err != nil {
		w.logAt(sc, "delivery: cannot disable endpoint", "err", err)
		return false
	}
	w.logAt(sc, "delivery: endpoint disabled", "reason", reason)
	_ = w.apply(ep)
	return true
}

// deadLetter stores j as a dead letter, then drops it. If the store
// fails, the job is tried again later instead: nothing is dropped
// unrecorded.
func (w *worker) deadLetter(j *job, last *hookstreamv1.DeliveryAttempt, sc trace.SpanContext) {
	if err := w.storeDead(j, last, "dead_lettered"); err != nil {
		w.logAt(sc, "delivery: cannot store a dead letter; retrying it", "event_id", j.id, "err", err)
		j.attempts--
		j.due = time.Now().Add(5 * time.Second)
		w.requeue(j)
		return
	}
	w.logAt(sc, "delivery: retries exhausted; the event is a dead letter", "event_id", j.id, "cursor", j.seq,
		"attempts", j.attempts, "status", last.GetStatusCode(), "err", last.GetError())
	w.done(j)
}

// nextWake is how long the loop may sleep: until the next due job, the
// next save, or a rate-limit token.
func (w *worker) nextWake() time.Duration {
	d := time.Second
	if w.active() && w.ready.Len() > 0 && w.inflight < w.maxInFlight() {
		d = min(d, time.Until(w.ready[0].due))
		if w.limiter != nil {
			// Until the limiter's next token, not a whole period from
			// now: woken just before it (by a result, a save, the poll),
			// a full period's sleep made the gaps near 2/rate.
			if lack := 1 - w.limiter.TokensAt(time.Now()); lack > 0 {
				d = max(d, time.Duration(lack*float64(time.Second)/float64(w.limiter.Limit())))
			}
		}
	}
	if w.dirty {
		d = min(d, time.Until(w.lastSave.Add(w.saveInterval())))
	}
	return max(d, time.Millisecond)
}

func (w *worker) saveInterval() time.Duration {
	return 100*time.Millisecond + time.Duration(len(w.jobs))*20*time.Microsecond
}

// maybeSave starts writing the checkpoint when it changed and the
// interval passed (or at once, with force), on its own goroutine so the
// loop keeps dispatching meanwhile; one write is in flight at a time.
// Each write is a compare-and-set: a write by another replica means this
// one lost the endpoint, and it stops (see saved).
func (w *worker) maybeSave(force bool) {
	if w.saving || !w.dirty || (!force && time.Since(w.lastSave) < w.saveInterval()) {
		return
	}
	jobs := sortedJobs(w.jobs)
	applied, _ := w.applied()
	data := checkpoint{Cursor: w.cursor, FailingSince: w.failingSince, RedriveSeq: w.redriveSeq, Applied: applied, Log: w.logID, Jobs: jobs}.encode()
	pending, old, cursor := len(jobs), oldest(jobs), w.cursor
	w.dirty, w.saving, w.lastSave = false, true, time.Now()
	rev := w.stateRev
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		newRev, err := w.e.state.Update(ctx, w.id, data, rev)
		w.saveDone <- saveResult{rev: newRev, err: err, pending: pending, oldest: old, cursor: cursor}
	}()
}

// saveResult is the end of a checkpoint write.
type saveResult struct {
	rev     uint64
	err     error
	pending int
	oldest  time.Time
	cursor  uint64
}

// saved takes the end of a checkpoint write.
func (w *worker) saved(r saveResult) {
	w.saving = false
	if r.err != nil {
		w.dirty = true
		if errors.Is(r.err, jetstream.ErrKeyExists) || errors.Is(r.err, jetstream.ErrKeyNotFound) {
			w.logf("delivery: another replica took the endpoint over; stopping here")
			w.lost = true
			w.halt(false)
			return
		}
		w.logf("delivery: cannot save progress; retrying", "err", r.err)
		return
	}
	w.stateRev = r.rev
	w.savedPending, w.savedOldest, w.savedCursor, w.savedOnce = r.pending, r.oldest, r.cursor, true
	w.refreshGauges()
}

// refreshGauges sets the endpoint's queue gauges from its last checkpoint.
func (w *worker) refreshGauges() {
	if w.ctx.Err() != nil {
		return
	}
	failing := w.failingSince
	if !w.active() {
		failing = time.Time{} // paused or disabled: nothing is attempted
	}
	w.e.o.Metrics.failingFor(w.id, failing)
	if !w.savedOnce {
		return
	}
	var lag uint64
	if _, head := w.e.o.Next(); head > w.savedCursor {
		lag = head - w.savedCursor
	}
	w.e.o.Metrics.progress(w.id, w.savedPending, w.savedOldest, lag)
}

// saveNow writes the checkpoint and waits for the write.
func (w *worker) saveNow() {
	if w.saving {
		w.saved(<-w.saveDone)
	}
	if w.lost {
		return
	}
	w.maybeSave(true)
	if w.saving {
		w.saved(<-w.saveDone)
	}
}

func oldest(jobs []*job) time.Time {
	var t time.Time
	for _, j := range jobs {
		if t.IsZero() || j.recv.Before(t) {
			t = j.recv
		}
	}
	return t
}

// pollRedrives takes redrive requests for this endpoint: each is a job
// again, with a fresh schedule.
func (w *worker) pollRedrives() {
	ctx, cancel := context.WithTimeout(w.ctx, 5*time.Second)
	defer cancel()
	reqs, last, err := w.e.redrives(ctx, w.id, w.redriveSeq, 1000)
	if err != nil {
		w.logf("delivery: cannot read redrive requests", "err", err)
		return
	}
	for _, r := range reqs {
		if w.jobs[r.Seq] == nil {
			// The ordering key is always known, so a redriven event keeps
			// its place among its subject's, now or after a switch to
			// PER_SUBJECT.
			j := &job{seq: r.Seq, id: r.EventID, recv: r.Received, due: time.Now()}
			st, err := w.e.o.Log.At(ctx, r.Seq)
			switch {
			case err == nil:
				if ev, derr := st.Decoded(); derr == nil {
					j.key = orderingKey(ev)
				}
			case !errors.Is(err, eventlog.ErrGone):
				w.logf("delivery: cannot read a redriven event; trying again", "cursor", r.Seq, "err", err)
				return // redriveSeq stays before it
			}
			w.add(j)
		}
		if r.pos > w.redriveSeq {
			w.redriveSeq, w.dirty = r.pos, true
		}
	}
	if last > w.redriveSeq {
		w.redriveSeq, w.dirty = last, true
	}
}

// readyHeap orders jobs by due time, then log position.
type readyHeap []*job

func (h readyHeap) Len() int { return len(h) }
func (h readyHeap) Less(a, b int) bool {
	if !h[a].due.Equal(h[b].due) {
		return h[a].due.Before(h[b].due)
	}
	return h[a].seq < h[b].seq
}
func (h readyHeap) Swap(a, b int) { h[a], h[b] = h[b], h[a]; h[a].idx, h[b].idx = a, b }
func (h *readyHeap) Push(x any) {
	j := x.(*job)
	j.idx = len(*h)
	*h = append(*h, j)
}
func (h *readyHeap) Pop() any {
	old := *h
	j := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	j.idx = -1
	return j
}
