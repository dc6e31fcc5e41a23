package delivery

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// The attempts log keeps attempt records in messages of many records
// each: one JetStream message per attempt cost about half of what a
// delivery cost (docs/performance.md, "What the outbound attempt records
// cost"). Records wait up to attemptLinger and go out grouped by subject.
//
// A record's subject is hookstream.attempts.<endpoint>.<key>, the key
// being three hex digits of the event's log position divided by
// attemptSpan, modulo 4096: events near each other in the log, which are
// delivered near each other in time, share a key, so one flush makes a
// few messages per endpoint, and an event's attempts are found on its
// key's subject (from the time it was received). An endpoint's records
// are stored in the order they were made. Attempts of events that
// are not in the log (test events) have key t<xx>, from their id. Records
// written before this layout (one message each, keyed by three hex
// digits of the event id) are still read per endpoint; by event, they are
// not found.
const (
	// attemptSpan log positions share a key (at 1,000 events/s a key
	// holds about a quarter of a second of the log and comes round again
	// after about 17 minutes).
	attemptSpan = 256
	// attemptLinger is the longest a record waits to be written.
	attemptLinger = 20 * time.Millisecond
	// A message holds at most attemptsPerMsg records (a page position
	// keeps the record's index in its low 10 bits) and attemptsMsgBytes
	// (or half the server's max payload, if less), unless one record
	// alone is larger.
	attemptsPerMsg   = 1000
	attemptsMsgBytes = 256 << 10
	// attemptsPending bounds what waits in memory: past it a flush goes
	// out at once.
	attemptsPending = 4096
	// headerAttempts marks a message of records (its value is their
	// number); its body is a ListDeliveryAttemptsResponse with attempts
	// only, that is each record as field 1.
	headerAttempts = "Hookstream-Attempts"
)

// attemptKey is the key of the attempts of the event at log position
// seq, or of an event outside the log (seq 0, a test event) with this id.
func attemptKey(seq uint64, eventID string) string {
	if seq == 0 {
		if len(eventID) < 2 {
			return "txx"
		}
		return "t" + eventID[:2]
	}
	k := (seq / attemptSpan) & 0xfff
	const hex = "0123456789abcdef"
	return string([]byte{hex[k>>8], hex[k>>4&0xf], hex[k&0xf]})
}

// attemptSubject is where an endpoint's attempts of the event at seq
// (0: outside the log) are written; endpoint "*" reads every endpoint's.
func attemptSubject(endpoint string, seq uint64, eventID string) string {
	return attemptsPrefix + "." + endpoint + "." + attemptKey(seq, eventID)
}

// recorder gathers attempt records and writes them a few at a time, on
// a JetStream context of its own: what it has outstanding is only
// records, and records the server refuses or never acknowledges are
// counted lost by its error handler.
type recorder struct {
	js       jetstream.JetStream
	logger   *slog.Logger
	linger   time.Duration
	msgBytes int                // most record bytes in one message
	lost     prometheus.Counter // may be nil

	mu      sync.Mutex
	pending []pendingAttempt
	armed   bool // a flush is due after linger
	rushing bool // a flush was started because many wait

	flushMu sync.Mutex // one flush at a time, so messages go out in order

	// sent counts the messages handed to JetStream, answered those it
	// acknowledged or failed; a sync waits for answered to reach what
	// was sent before it (never for what is sent after it).
	countMu  sync.Mutex
	sent     uint64
	answered uint64
	waiters  []syncWaiter
}

type syncWaiter struct {
	sent uint64
	done chan struct{}
}

type pendingAttempt struct {
	endpoint, subject string
	data              []byte // the record, marshalled
}

const (
	// attemptsMaxPending bounds the records waiting in memory while the
	// log does not take them (a flush stuck, JetStream unreachable);
	// past it records are counted lost.
	attemptsMaxPending = 64 << 10
	// attemptsAckWait is how long the server has to acknowledge a message
	// of records before they count as lost, and the longest sync waits.
	attemptsAckWait = 5 * time.Second
)

func newRecorder(nc *nats.Conn, logger *slog.Logger, lost prometheus.Counter) (*recorder, error) {
	r := &recorder{logger: logger, linger: attemptLinger, lost: lost,
		msgBytes: int(min(attemptsMsgBytes, nc.MaxPayload()/2))}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(attemptsAckWait),
		jetstream.WithPublishAsyncAckHandler(func(jetstream.JetStream, *nats.Msg, *jetstream.PubAck) { r.answer() }),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
			n, _ := strconv.Atoi(m.Header.Get(headerAttempts))
			r.dropped(n, "the attempts log refused or did not acknowledge records", err)
			r.answer()
		}))
	if err != nil {
		return nil, err
	}
	r.js = js
	return r, nil
}

// dropped counts n records lost.
func (r *recorder) dropped(n int, why string, err error) {
	if r.lost != nil {
		r.lost.Add(float64(n))
	}
	r.logger.Debug("delivery: "+why, "records", n, "err", err)
}

// add queues a record of the event at log position seq (0: a test
// event); it is written within the linger, or at once when many are
// waiting.
func (r *recorder) add(a *hookstreamv1.DeliveryAttempt, seq uint64) {
	data, err := proto.Marshal(a)
	if err != nil {
		return
	}
	p := pendingAttempt{a.GetEndpointId(), attemptSubject(a.GetEndpointId(), seq, a.GetEventId()), data}
	r.mu.Lock()
	if len(r.pending) >= attemptsMaxPending {
		r.mu.Unlock()
		r.dropped(1, "too many attempt records wait to be written", nil)
		return
	}
	r.pending = append(r.pending, p)
	rush := len(r.pending) >= attemptsPending && !r.rushing
	arm := !r.armed && !rush
	r.rushing = r.rushing || rush
	r.armed = r.armed || arm
	r.mu.Unlock()
	switch {
	case rush:
		go r.flush()
	case arm:
		time.AfterFunc(r.linger, r.flush)
	}
}

// flush writes what is waiting without waiting for the server.
func (r *recorder) flush() {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	r.mu.Lock()
	batch := r.pending
	r.pending, r.armed, r.rushing = nil, false, false
	r.mu.Unlock()
	for _, m := range group(batch, r.msgBytes) {
		// Counted before it is sent, so its answer never comes first.
		r.countMu.Lock()
		r.sent++
		r.countMu.Unlock()
		if _, err := r.js.PublishMsgAsync(m); err != nil {
			n, _ := strconv.Atoi(m.Header.Get(headerAttempts))
			r.dropped(n, "attempt records not sent to the attempts log", err)
			r.answer()
		}
	}
}

// answer counts a message answered, and releases the syncs it completes.
func (r *recorder) answer() {
	r.countMu.Lock()
	defer r.countMu.Unlock()
	r.answered++
	kept := r.waiters[:0]
	for _, w := range r.waiters {
		if w.sent <= r.answered {
			close(w.done)
		} else {
			kept = append(kept, w)
		}
	}
	r.waiters = kept
}

// sync writes what is waiting and returns once the server has answered
// as many messages as were sent up to then (stored, or counted lost; the
// stream answers one connection's messages in order), waiting at most
// attemptsAckWait: a dead letter reads its earlier attempts back, and
// Stop leaves nothing behind. Messages sent after it are not waited for,
// however many keep coming.
func (r *recorder) sync(ctx context.Context) error {
	r.flush()
	r.countMu.Lock()
	if r.answered >= r.sent {
		r.countMu.Unlock()
		return nil
	}
	w := syncWaiter{sent: r.sent, done: make(chan struct{})}
	r.waiters = append(r.waiters, w)
	r.countMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, attemptsAckWait)
	defer cancel()
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("delivery: attempt records not acknowledged: %w", ctx.Err())
	}
}

// group makes the messages of a flush. An endpoint's records stay in the
// order they came: each message holds a run of them on one subject (a
// new one begins when the subject changes, or past attemptsPerMsg records
// or about attemptsMsgBytes). In steady delivery an endpoint's events
// come in log order, so its runs are long; a retry among them breaks a
// run. The messages go out in the order of their last records, so each
// endpoint's go out in order and its last message holds its newest record
// (Store.LastAttempt reads it).
func group(batch []pendingAttempt, msgBytes int) []*nats.Msg {
	type run struct {
		msg  *nats.Msg
		n    int
		last int
	}
	var order []*run
	open := map[string]*run{} // by endpoint
	for i, p := range batch {
		o := open[p.endpoint]
		size := protowire.SizeTag(1) + protowire.SizeBytes(len(p.data))
		if o == nil || o.msg.Subject != p.subject || o.n >= attemptsPerMsg || (o.n > 0 && len(o.msg.Data)+size > msgBytes) {
			o = &run{msg: &nats.Msg{Subject: p.subject, Header: nats.Header{}}}
			open[p.endpoint] = o
			order = append(order, o)
		}
		o.msg.Data = protowire.AppendTag(o.msg.Data, 1, protowire.BytesType)
		o.msg.Data = protowire.AppendBytes(o.msg.Data, p.data)
		o.n++
		o.last = i
	}
	// An endpoint's earlier runs end before its later ones begin.
	slices.SortFunc(order, func(a, b *run) int { return cmp.Compare(a.last, b.last) })
	out := make([]*nats.Msg, len(order))
	for i, o := range order {
		o.msg.Header.Set(headerAttempts, strconv.Itoa(o.n))
		out[i] = o.msg
	}
	return out
}

// decodeAttempts reads the records of one message of the attempts log: a
// message of records, or one record alone (the layout before).
func decodeAttempts(m *jetstream.RawStreamMsg) ([]*hookstreamv1.DeliveryAttempt, error) {
	if m.Header.Get(headerAttempts) == "" {
		a := &hookstreamv1.DeliveryAttempt{}
		if err := proto.Unmarshal(m.Data, a); err != nil {
			return nil, err
		}
		return []*hookstreamv1.DeliveryAttempt{a}, nil
	}
	var msg hookstreamv1.ListDeliveryAttemptsResponse
	if err := proto.Unmarshal(m.Data, &msg); err != nil {
		return nil, err
	}
	return msg.GetAttempts(), nil
}

// A page position in the attempts log: the message's position and the
// index of a record in it.
func attemptPos(seq uint64, i int) uint64 { return seq<<10 | uint64(i) }

func splitAttemptPos(pos uint64) (uint64, int) { return pos >> 10, int(pos & 1023) }
