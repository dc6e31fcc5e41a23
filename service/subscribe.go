package service

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/budget"
	"github.com/hookstream/hookstream/service/eventlog"
	"github.com/hookstream/hookstream/service/filter"
	"github.com/hookstream/hookstream/service/tracing"
)

// joinBelow is how close (in matching events still to read) a catching-up
// stream must be before it joins the hub; it also joins only when those
// events fit its hub queue (see subscription.caughtUp).
const joinBelow = 1024

// grpcMsgPrefix is the length prefix gRPC writes before every message.
const grpcMsgPrefix = 5

// streamState is where a Subscribe stream is in its life:
//
//	start -+- from now --------------------------------+
//	       +- from the past -> catching up -> joining -+-> live
//	                               ^             |          |
//	                               + detached <--+----------+
//
// and from any of them to one of the ending states. Whatever the state,
// the stream skips every event at or below the last log position it has
// passed (subscription.last), which is what makes the switches lose
// nothing and repeat nothing.
type streamState int

const (
	// stateNew is a stream not started yet.
	stateNew streamState = iota
	// stateCatchingUp reads the log on its own (catchUp), from the
	// request's start or from where the stream left the hub. It has no
	// hub feed.
	stateCatchingUp
	// stateJoining still reads the log on its own, and also has a hub
	// feed, joined at hub position joinedAt, queueing every event after
	// it. It goes live once its own reads reach joinedAt, or once the log
	// holds nothing for it past what it has passed: from then on the feed
	// has every event it still needs.
	stateJoining
	// stateLive is fed by the hub only; its own reader is stopped.
	stateLive
	// stateDetached is passed through when the hub drops the stream's
	// feed (its queue was full, or the hub lost the log): a live stream
	// passes queued events until one is pending, then reads the log again
	// from last (whatever was still queued is read again); a joining
	// stream just goes on reading. Either way it is catching up next.
	stateDetached

	// Ending states: the stream is over and its handler returns.

	// stateClosed: the client went away (its context ended, or a Send
	// failed).
	stateClosed
	// stateStalled: dropped, its client having accepted no byte of what
	// was sent to it for the stall timeout (RESOURCE_EXHAUSTED).
	stateStalled
	// stateShuttingDown: the server is stopping (UNAVAILABLE).
	stateShuttingDown
	// stateFailed: the log could not be read, an event could not be
	// decoded, or the filter failed on one.
	stateFailed
)

func (st streamState) String() string {
	switch st {
	case stateNew:
		return "new"
	case stateCatchingUp:
		return "catching-up"
	case stateJoining:
		return "joining"
	case stateLive:
		return "live"
	case stateDetached:
		return "detached"
	case stateClosed:
		return "closed"
	case stateStalled:
		return "stalled"
	case stateShuttingDown:
		return "shutting-down"
	case stateFailed:
		return "failed"
	}
	return "unknown"
}

// outMsg is a message for a stream's sender, with its size on the wire and
// its charge on the buffer budget.
type outMsg struct {
	m    any // *encodedDelivery or *hookstreamv1.SubscribeResponse
	size int64
	hold hold
	// traced is the event sent, when tracing is on and it was stored with
	// a trace context: its send is a span of that trace.
	traced *eventlog.Stored
}

// catchEvent is an event a stream read from the log on its own, charged to
// the buffer budget; end says the read found nothing more for now.
type catchEvent struct {
	st   eventlog.Stored
	hold hold
	end  bool
	// frame is the event's wire form when the reader built it (a stream
	// without raw requests or a filter, see catchUp); nil otherwise.
	frame *encodedDelivery
}

// subscription is one Subscribe stream. Its state (streamState) and
// everything below belong to the one goroutine that runs it (run); the
// sender and the catch-up reader are goroutines of their own that it
// talks to through channels.
//
// Invariants:
//   - last is the last log position the stream has passed: sent, pending,
//     or dropped by the filter. Catch-up reads and the hub feed both skip
//     every event at or below it, so an event seen on both paths while the
//     stream switches between them is passed once, and in log order.
//   - last is a position in the log's incarnation (see
//     eventlog.Log.Incarnation). When the event stream is deleted and
//     created again, its positions start over: the stream then starts
//     over too, from the new stream's first event (startOver).
//   - A stream has a hub feed (feed) only while joining or live, and its own
//     reader (catchup) only while catching up or joining (a joining stream
//     keeps it through a detach).
//   - At most one message is pending (waiting for the sender); while one
//     is, the stream takes nothing more from its feeds, and a hub feed
//     that fills up meanwhile is dropped by the hub (stateDetached).
//   - Everything it holds beyond its hub queue is charged to the buffer
//     budget: the pending message, catch-up reads, and what the sender
//     handed to gRPC until its bytes have left (see streams.go).
type subscription struct {
	e      *Events
	id     string
	logger *slog.Logger
	lag    prometheus.Gauge
	filter *filter.Filter
	// subject narrows the catch-up reads ("" for all events); lastSubject
	// is the same for the log's newest-event lookup (">" for all).
	subject, lastSubject string
	out                  *sender
	// withRaw sends events with their raw request (include_raw); without
	// it they go out without, from the same stored bytes cut short.
	withRaw bool

	state       streamState
	last        uint64  // last log position passed
	incarnation string  // the log's incarnation last belongs to
	feed        *hubSub // nil unless joining or live
	joinedAt    uint64  // hub position when feed joined
	// catchup and readErr come from the catch-up reader, stopRead stops
	// it; nil (and a no-op) unless catching up or joining.
	catchup  <-chan catchEvent
	readErr  <-chan error
	stopRead func()
	idle     bool // the catch-up read found nothing more
	pending  *outMsg
	// waitBudget is set while the next hub event waits for room in the
	// buffer budget.
	waitBudget <-chan struct{}
}

func (s *Events) newSubscription(f *filter.Filter, subjects []string, withRaw bool) *subscription {
	id := strconv.FormatUint(s.streams.Add(1), 10)
	sub := &subscription{e: s, id: id, logger: s.logger.With("subscriber", id), lag: s.metrics.lag.WithLabelValues(id),
		filter: f, lastSubject: ">", stopRead: func() {}, withRaw: withRaw, incarnation: s.log.Incarnation()}
	if len(subjects) == 1 {
		sub.lastSubject, sub.subject = subjects[0], subjects[0]
	}
	return sub
}

// run serves the stream from start until it ends, and returns its
// status. release gives back the stream's place among the open streams;
// run owns it from the start (the sender calls it once the stream is
// over on the wire).
func (sub *subscription) run(stream grpc.ServerStream, start eventlog.Start, release func()) error {
	s := sub.e
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	s.metrics.subscribers.Inc()
	defer func() {
		s.metrics.subscribers.Dec()
		s.metrics.lag.DeleteLabelValues(sub.id)
	}()
	sub.out = newSender(stream, trackStream(stream.Context()), s.buffers)
	sub.out.tracer, sub.out.subscriber = s.tracer, sub.id
	go sub.out.run(ctx, release)
	// A filter narrows reads to one subject at most (see Events.compile).
	sub.logger.InfoContext(ctx, "subscriber connected", "filter", sub.filter.String(), "subjects", sub.subject)
	defer sub.logger.InfoContext(ctx, "subscriber disconnected")
	defer sub.stop()

	sub.start(ctx, start)
	// Headers now, so a client knows the stream is established (and, from
	// "now", positioned) before the first event or heartbeat.
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return sub.end(stateClosed, err)
	}
	return sub.loop(ctx)
}

// loop moves the stream between its states until it ends.
func (sub *subscription) loop(ctx context.Context) error {
	s := sub.e
	heartbeat := time.NewTicker(s.heartbeat)
	defer heartbeat.Stop()
	watchdog := time.NewTicker(min(s.stall/4, 500*time.Millisecond))
	defer watchdog.Stop()
	stall := stallWatch{progress: sub.out.progress, fl: sub.out.fl, sending: &sub.out.sending, timeout: s.stall, movedAt: time.Now()}
	for {
		if sub.state == stateLive {
			if err := sub.fromHub(ctx, sub.feed); err != nil {
				return sub.end(stateFailed, err)
			}
		}
		// While a message waits for the sender, nothing more is taken; the
		// hub detaches a feed that fills up, and the stream catches up on
		// its own later.
		in, ready, outCh := sub.catchup, (<-chan struct{})(nil), chan<- outMsg(nil)
		var detached <-chan struct{}
		if sub.feed != nil {
			detached = sub.feed.detached
			if sub.state == stateLive && sub.waitBudget == nil {
				ready = sub.feed.ready
			}
		}
		var next outMsg
		if sub.pending != nil {
			in, ready, outCh, next = nil, nil, sub.out.out, *sub.pending
		}
		var err error
		select {
		case outCh <- next:
			sub.pending = nil
			heartbeat.Reset(s.heartbeat)
		case <-ready:
		case <-sub.waitBudget:
			sub.waitBudget = nil
		case ce := <-in:
			err = sub.caughtUp(ctx, ce)
		case <-detached:
			err = sub.detach(ctx)
		case <-heartbeat.C:
			sub.heartbeat()
		case <-watchdog.C:
			sub.out.poke()
			if stall.stalled() {
				cursor := sub.out.cursor()
				sub.logger.WarnContext(ctx, "dropping stalled subscriber", "stalled_for", s.stall, "last_cursor", cursor)
				return sub.end(stateStalled, errStalled(s.stall, cursor))
			}
			sub.checkUpToDate(ctx)
		case err := <-sub.out.failed:
			return sub.end(stateClosed, err)
		case err := <-sub.readErr:
			if ctx.Err() != nil {
				return sub.end(stateClosed, nil)
			}
			if errors.Is(err, eventlog.ErrReplaced) {
				sub.startOver(ctx)
				continue
			}
			sub.logger.ErrorContext(ctx, "subscription lost the log", "err", err)
			return sub.end(stateFailed, errLogUnreadable())
		case <-ctx.Done():
			return sub.end(stateClosed, nil)
		case <-s.stopping:
			return sub.end(stateShuttingDown, errShuttingDown())
		}
		if err != nil {
			return sub.end(stateFailed, err)
		}
	}
}

// enter moves the stream to st and tells the Events' observer, if any.
func (sub *subscription) enter(st streamState) {
	sub.state = st
	sub.logger.Debug("subscriber state", "state", st.String())
	if observe := sub.e.observe; observe != nil {
		observe(sub.id, st)
	}
}

// end enters an ending state and returns the stream's status.
func (sub *subscription) end(st streamState, err error) error {
	sub.enter(st)
	return err
}

// start positions a new stream: one from now joins the hub and is live
// at once (nothing before the hub's position is wanted); any other
// catches up from its start.
func (sub *subscription) start(ctx context.Context, from eventlog.Start) {
	if from.New {
		sub.feed, sub.joinedAt = sub.e.hub.join(sub.withRaw)
		sub.goLive()
		return
	}
	sub.catchUpFrom(ctx, from)
}

// catchUpFrom starts the stream's own reader of the log: catching up.
func (sub *subscription) catchUpFrom(ctx context.Context, from eventlog.Start) {
	// Stopping does not wait: the reader gives back what it holds on its
	// way out (after the read in progress, if any).
	rctx, cancel := context.WithCancel(ctx)
	ch, errc := make(chan catchEvent), make(chan error, 1)
	sub.catchup, sub.readErr, sub.stopRead = ch, errc, cancel
	// A stream that takes events without their raw request and filters
	// nothing has the raw field dropped as soon as it is read (see
	// catchUp); one with a filter keeps it until the filter has seen it.
	strip := !sub.withRaw && sub.filter.Empty()
	read := catchUpRead{from: from, subject: sub.subject, incarnation: sub.incarnation, strip: strip}
	go func() { errc <- sub.e.catchUp(rctx, read, ch, sub.out.wantMore, sub.out.wake) }()
	sub.idle = false
	sub.enter(stateCatchingUp)
}

// stopReading stops the stream's own reader, if it has one.
func (sub *subscription) stopReading() {
	sub.stopRead()
	sub.stopRead, sub.catchup, sub.readErr = func() {}, nil, nil
}

// joinHub gives a catching-up stream a hub feed: joining.
func (sub *subscription) joinHub() {
	sub.feed, sub.joinedAt = sub.e.hub.join(sub.withRaw)
	sub.enter(stateJoining)
}

// goLive leaves the rest to the hub feed: every event after joinedAt is
// queued there, and those at or below last are skipped.
func (sub *subscription) goLive() {
	sub.stopReading()
	sub.last = max(sub.last, sub.joinedAt)
	sub.enter(stateLive)
}

// caughtUp takes one event (or the news that there is none for now) from
// the stream's own reader, joins the hub once what is left fits the
// stream's hub queue, and goes live once the reads reach the hub's
// position at join.
func (sub *subscription) caughtUp(ctx context.Context, ce catchEvent) error {
	if ce.end {
		sub.idle = true
		if sub.feed == nil {
			sub.joinHub()
		}
		return nil
	}
	sub.idle = false
	st := ce.st
	sub.lag.Set(float64(st.Pending))
	if err := sub.deliver(ctx, st, ce.frame, ce.hold); err != nil {
		return err
	}
	if sub.feed == nil && st.Pending < joinBelow && st.Pending*uint64(len(st.Raw)+1) <= uint64(sub.e.streamBuffer) {
		sub.joinHub()
	}
	if sub.feed != nil && st.Seq >= sub.joinedAt {
		sub.goLive()
	}
	return nil
}

// checkUpToDate lets a joining stream whose reads found nothing more go
// live: one whose filter matches nothing new never reaches the hub's
// position by reading, so the log is asked instead.
func (sub *subscription) checkUpToDate(ctx context.Context) {
	if sub.state != stateJoining || !sub.idle || sub.pending != nil {
		return
	}
	if m, err := sub.e.log.LastSeqFor(ctx, sub.lastSubject); err == nil && m <= sub.last {
		sub.goLive()
	}
}

// detach follows the hub dropping the stream's feed (too slow for the hub,
// or the hub lost the log): a live stream keeps what it can take of what
// was queued, then reads the log from where it is; a joining one goes on
// reading.
func (sub *subscription) detach(ctx context.Context) error {
	feed, wasLive := sub.feed, sub.state == stateLive
	sub.e.hub.leave(feed)
	sub.feed, sub.waitBudget = nil, nil
	sub.enter(stateDetached)
	if !wasLive {
		sub.enter(stateCatchingUp)
		return nil
	}
	if err := sub.fromHub(ctx, feed); err != nil {
		return err
	}
	// Whatever is still queued is read again from the log: last only
	// covers what was processed.
	sub.logger.DebugContext(ctx, "subscriber left the hub; catching up on its own", "after", sub.last)
	sub.catchUpFrom(ctx, eventlog.Start{AfterSeq: sub.last})
	return nil
}

// startOver follows the event stream into a new incarnation (deleted and
// created again, its positions starting over): every event of the new
// stream comes after everything the stream has passed, so it reads the new
// stream from its first event. Events of the new stream that a read made
// before the replacement was noticed passed on already come again.
func (sub *subscription) startOver(ctx context.Context) {
	sub.stopReading()
	if sub.feed != nil {
		sub.e.hub.leave(sub.feed)
		sub.feed, sub.waitBudget = nil, nil
	}
	sub.logger.WarnContext(ctx, "the event stream was replaced; the subscriber starts over at the new stream's first event", "passed", sub.last)
	sub.last, sub.joinedAt, sub.incarnation = 0, 0, sub.e.log.Incarnation()
	sub.catchUpFrom(ctx, eventlog.Start{})
}

// fromHub takes queued hub events until one is pending, the queue is
// empty, or the buffer budget has no room for the next one.
func (sub *subscription) fromHub(ctx context.Context, feed *hubSub) error {
	budget := sub.e.buffers
	for sub.pending == nil && sub.waitBudget == nil {
		ev, ok := feed.peek()
		if !ok {
			return nil
		}
		n := int64(ev.frame.size())
		if !ev.charge.tryHold(budget, n) {
			sub.waitBudget = budget.Freed()
			if ev.charge.tryHold(budget, n) { // freed in between
				sub.waitBudget = nil
			} else {
				return nil
			}
		}
		feed.pop()
		sub.lag.Set(float64(feed.queued()))
		if err := sub.deliver(ctx, ev.Stored, ev.frame, hold{n: n, shared: ev.charge}); err != nil {
			return err
		}
	}
	return nil
}

// deliver passes one event (holding h): skipped at or below last, dropped
// by the filter, or made pending (frame is its wire form when the hub has
// built it already).
func (sub *subscription) deliver(ctx context.Context, st eventlog.Stored, frame *encodedDelivery, h hold) error {
	budget := sub.e.buffers
	if st.Seq <= sub.last {
		h.release(budget)
		return nil
	}
	sub.last = st.Seq
	if !sub.filter.Empty() {
		ev, err := st.Decoded()
		if err != nil {
			h.release(budget)
			sub.logger.ErrorContext(ctx, "undecodable event in the log", "seq", st.Seq, "err", err)
			return errInternal()
		}
		ok, err := sub.filter.MatchWithin(ctx, ev, nil)
		if err != nil {
			h.release(budget)
			return errInvalid(ReasonInvalidFilter, err.Error())
		}
		if !ok {
			h.release(budget)
			return nil
		}
	}
	if frame == nil {
		event := st.Raw
		if !sub.withRaw {
			event = eventlog.StripRaw(event)
		}
		frame = encodeDelivery(event, eventlog.Cursor(st.Seq))
	}
	sub.pending = &outMsg{m: frame, size: int64(grpcMsgPrefix + frame.size()), hold: h}
	if sub.e.tracer.Enabled() && st.Trace.Parent != "" {
		sub.pending.traced = &st
	}
	return nil
}

// heartbeat makes a heartbeat pending if the stream is silent. Silence
// means nothing on its way either: a client still receiving a large event
// needs no heartbeat.
func (sub *subscription) heartbeat() {
	if sub.pending != nil || !sub.out.quiet() {
		return
	}
	hb := &hookstreamv1.SubscribeResponse{Message: &hookstreamv1.SubscribeResponse_Heartbeat{
		Heartbeat: &hookstreamv1.Heartbeat{Time: timestamppb.New(sub.e.now())},
	}}
	sub.pending = &outMsg{m: hb, size: int64(grpcMsgPrefix + proto.Size(hb))}
}

// stop gives back what the stream still holds, on its way out: its
// reader, its hub feed, its pending message.
func (sub *subscription) stop() {
	sub.stopReading()
	if sub.feed != nil {
		sub.e.hub.leave(sub.feed)
		sub.feed = nil
	}
	if sub.pending != nil {
		sub.pending.hold.release(sub.e.buffers)
		sub.pending = nil
	}
}

// sender owns a stream's SendMsg, on a goroutine of its own, so that the
// subscription keeps watching its feeds, the clock and the client while a
// Send is blocked on a client that does not read. It takes one message at
// a time (out).
type sender struct {
	stream   grpc.ServerStream
	progress *streamProgress // nil: no byte counts from the wire (see trackStream)
	fl       *flight
	out      chan outMsg
	failed   chan error   // the error of the Send that failed
	sending  atomic.Int64 // unix nanos when the pending Send began, 0 when idle
	sent     atomic.Value // string: the cursor of the last delivery gRPC took
	// wake is poked whenever wantMore may have changed.
	wake chan struct{}
	// tracer makes a span per traced event sent (nil: tracing off), for
	// the stream numbered subscriber.
	tracer     *tracing.Tracer
	subscriber string
}

func newSender(stream grpc.ServerStream, progress *streamProgress, b *budget.Budget) *sender {
	return &sender{stream: stream, progress: progress, fl: &flight{b: b}, out: make(chan outMsg),
		failed: make(chan error, 1), wake: make(chan struct{}, 1)}
}

// run sends what it is handed until ctx ends or a Send fails; release
// gives back the stream's place once the stream is over on the wire.
func (w *sender) run(ctx context.Context, release func()) {
	defer func() {
		// Whatever gRPC still holds of this stream is given back once the
		// stream is over on the wire: its bytes (and trailers) written, or
		// the stream reset, or the connection gone.
		settle := func() { w.fl.clear(); release() }
		if w.progress != nil {
			w.progress.afterEnd(settle)
		} else {
			settle()
		}
	}()
	for {
		select {
		case m := <-w.out:
			w.fl.add(m.size, m.hold)
			var span trace.Span
			if m.traced != nil {
				span = w.startSpan(ctx, m.traced)
			}
			w.sending.Store(time.Now().UnixNano())
			err := w.stream.SendMsg(m.m)
			w.sending.Store(0)
			w.poke()
			if span != nil {
				if err != nil {
					span.SetStatus(otelcodes.Error, "send failed")
				}
				span.End()
			}
			if err != nil {
				w.fl.unsent()
				w.failed <- err
				return
			}
			if w.progress != nil {
				w.fl.written(w.progress.Written())
			} else {
				w.fl.allButLast()
			}
			if d, ok := m.m.(*encodedDelivery); ok {
				w.sent.Store(d.cursor)
			}
		case <-ctx.Done():
			return
		}
	}
}

// startSpan starts the span of sending st: a child of the span that
// appended it (stored with it), so the event's trace goes on from its
// webhook to this stream, linked to the stream's own span (the
// subscriber's trace).
func (w *sender) startSpan(ctx context.Context, st *eventlog.Stored) trace.Span {
	_, span := w.tracer.StartWith(st.Trace.Remote(ctx), tracing.SpanSubscribeDeliver,
		trace.WithSpanKind(trace.SpanKindConsumer), trace.WithLinks(trace.LinkFromContext(ctx)))
	if span.IsRecording() {
		span.SetAttributes(tracing.AttrSubscriber.String(w.subscriber), tracing.AttrCursor.String(eventlog.Cursor(st.Seq)))
		if ev, err := st.Decoded(); err == nil {
			span.SetAttributes(tracing.AttrEventID.String(ev.GetId()))
		}
	}
	return span
}

// poke tells the catch-up reader to look at wantMore again.
func (w *sender) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// wantMore says whether the stream is ready for a catch-up read of n
// bytes: the sender is idle and what it sent has (nearly) left, so a
// client that does not read holds one read's worth at most.
func (w *sender) wantMore(n int64) bool {
	return w.sending.Load() == 0 && (w.progress == nil || w.fl.unwritten(w.progress.Written()) < n)
}

// quiet says whether nothing is being sent nor on its way to the client.
func (w *sender) quiet() bool {
	return w.sending.Load() == 0 && (w.progress == nil || w.fl.unwritten(w.progress.Written()) <= 0)
}

// cursor is the cursor of the last delivery gRPC took ("" if none).
func (w *sender) cursor() string {
	c, _ := w.sent.Load().(string)
	return c
}

// stallWatch notices a client that has accepted no byte of what was sent
// to it for the stall timeout. With byte counts from the wire, a client
// that keeps accepting bytes, however slowly, is never stalled; without
// them, a Send blocked for the stall timeout is.
type stallWatch struct {
	progress *streamProgress
	fl       *flight
	sending  *atomic.Int64 // unix nanos when the pending Send began, 0 when idle
	timeout  time.Duration

	written int64     // bytes written when last looked at
	movedAt time.Time // when written last moved, or nothing was due
}

func (w *stallWatch) stalled() bool {
	if w.progress == nil {
		began := w.sending.Load()
		return began != 0 && time.Since(time.Unix(0, began)) > w.timeout
	}
	written := w.progress.Written()
	w.fl.written(written)
	if written != w.written || w.fl.unwritten(written) <= 0 {
		w.written, w.movedAt = written, time.Now()
		return false
	}
	return time.Since(w.movedAt) > w.timeout
}

// catchUpRead is what one stream's catch-up reader reads.
type catchUpRead struct {
	from    eventlog.Start
	subject string // narrows the reads ("" for all events)
	// incarnation is the log's incarnation from names a position in; the
	// reader stops with eventlog.ErrReplaced once the log is in another.
	incarnation string
	// strip drops the raw request from each event as it is read (see
	// catchUp).
	strip bool
}

// catchUp reads the log from r.from for one stream and passes each event to
// out, charged to the buffer budget, until ctx ends (nil) or the log
// fails. It reads only when the stream is ready for more (wantMore, looked
// at again when wake is poked), one read at a time, charged before it is
// made; reads start small and double up to the stream's buffer size, so a
// stream whose client does not read holds one small read at most. When a
// read finds nothing it says so (end) and looks again a little later.
//
// With r.strip (a stream without raw requests or a filter), each event read
// loses its raw request at once, into a copy of its own, and only the rest
// is charged; its wire form is built here too, so the stream does not
// look for the raw field again. With log.keep_raw the raw body is about
// half of a stored event, and streams whose clients stop reading (each
// holding a few reads) would otherwise fill the catch-up share of the
// budget twice as fast and hold up everyone else's catch-up.
func (s *Events) catchUp(ctx context.Context, r catchUpRead, out chan<- catchEvent, wantMore func(n int64) bool, wake <-chan struct{}) error {
	const minWait, maxWait = 50 * time.Millisecond, time.Second
	from, wait := r.from, minWait
	size := min(64<<10, s.streamBuffer)
	for {
		for !wantMore(int64(size)) {
			select {
			case <-wake:
			case <-ctx.Done():
				return nil
			}
		}
		if s.log.Incarnation() != r.incarnation {
			return eventlog.ErrReplaced
		}
		// Catch-up reads leave a quarter of the budget to live streams, so
		// streams that read old events and then stop cannot hold up
		// those that follow the log.
		want := int64(size)
		if err := s.buffers.AcquireWithin(ctx, want, s.buffers.Limit()/4*3); err != nil {
			return nil
		}
		b, err := s.log.ReadBatch(ctx, from, r.subject, 0, size)
		if err != nil {
			s.buffers.Release(want)
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		// Hold what was read: a read may pass its cap by its last event.
		if got := int64(b.Bytes); got > want {
			s.buffers.Force(got - want)
		} else {
			s.buffers.Release(want - got)
		}
		var frames []*encodedDelivery
		if r.strip {
			// All at once: the events waiting for the stream hold only
			// what it will send.
			frames = make([]*encodedDelivery, len(b.Events))
			for i := range b.Events {
				st := &b.Events[i]
				if kept := eventlog.StripRaw(st.Raw); len(kept) < len(st.Raw) {
					s.buffers.Release(int64(len(st.Raw) - len(kept)))
					st.Raw = bytes.Clone(kept) // the read's buffer is not kept
				}
				frames[i] = encodeDelivery(st.Raw, eventlog.Cursor(st.Seq))
			}
		}
		for i, st := range b.Events {
			ce := catchEvent{st: st, hold: hold{n: int64(len(st.Raw))}}
			if frames != nil {
				ce.frame = frames[i]
			}
			select {
			case out <- ce:
			case <-ctx.Done():
				for _, rest := range b.Events[i:] {
					s.buffers.Release(int64(len(rest.Raw)))
				}
				return nil
			}
		}
		if n := len(b.Events); n > 0 {
			from, wait = eventlog.Start{AfterSeq: b.Events[n-1].Seq}, minWait
			size = min(2*size, s.streamBuffer)
			continue
		}
		select {
		case out <- catchEvent{end: true}:
		case <-ctx.Done():
			return nil
		}
		select {
		case <-time.After(wait):
			wait = min(2*wait, maxWait)
		case <-ctx.Done():
			return nil
		}
	}
}
