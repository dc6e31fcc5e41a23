package eventlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// Start says where reading begins. At most one field is set; the zero value
// starts at the oldest retained event.
type Start struct {
	// AfterSeq starts right after this position (resume from a cursor).
	AfterSeq uint64
	// FromSeq starts at this position.
	FromSeq uint64
	// Time starts at the first event stored at or after it.
	Time time.Time
	// New delivers only events stored from now on.
	New bool
}

func (s Start) consumerConfig(subjects []string) jetstream.OrderedConsumerConfig {
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects:    subjects,
		InactiveThreshold: time.Minute,
		DeliverPolicy:     jetstream.DeliverAllPolicy,
	}
	switch {
	case s.AfterSeq > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, s.AfterSeq+1
	case s.FromSeq > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, s.FromSeq
	case !s.Time.IsZero():
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, natsTime(s.Time)
	case s.New:
		cfg.DeliverPolicy = jetstream.DeliverNewPolicy
	}
	return cfg
}

// Batch is one read of the log for a client.
type Batch struct {
	// Events in log order.
	Events []Stored
	// Pending is how many matching events were stored after the batch
	// when it was read.
	Pending uint64
	// Bytes is the size of the events.
	Bytes int
}

// directGetBatch caps the events of one read; bytes usually end it first.
const directGetBatch = 1000

// numPendingHeader is how many matching events follow, in a batched
// direct get's answers.
const numPendingHeader = "Nats-Num-Pending"

// readTimeout bounds one read when the caller's context does not.
const readTimeout = 10 * time.Second

// ReadBatch reads the matching events from start on: at least one when
// there is any, then no more than maxEvents (0: no count limit) and no
// more once they hold maxBytes (0: Config.ReadBatchBytes), so only its last
// event can take it past maxBytes. subject narrows the events read
// (FilterSubject; "" means all).
//
// It is one batched direct get on the log's connection for reads: no
// consumer is created, so nothing is left behind on the server once it
// returns, and the bytes in flight across the process stay within
// Config.ReadBudget (further reads wait for their turn).
func (l *Log) ReadBatch(ctx context.Context, start Start, subject string, maxEvents, maxBytes int) (Batch, error) {
	if maxBytes <= 0 {
		maxBytes = l.cfg.ReadBatchBytes
	}
	if maxEvents <= 0 || maxEvents > directGetBatch {
		maxEvents = directGetBatch
	}
	if subject == "" || subject == ">" {
		subject = subjectPrefix + ".>"
	}
	req := directGetRequest{NextFor: subject, Batch: maxEvents, MaxBytes: maxBytes}
	switch {
	case start.AfterSeq > 0:
		req.Seq = start.AfterSeq + 1
	case start.FromSeq > 0:
		req.Seq = start.FromSeq
	case !start.Time.IsZero():
		req.StartTime = natsTime(start.Time)
	case start.New:
		last, err := l.LastSeq(ctx)
		if err != nil {
			return Batch{}, err
		}
		req.Seq = last + 1
	default:
		req.Seq = 1
	}
	body, err := json.Marshal(req)
	if err != nil {
		return Batch{}, fmt.Errorf("eventlog: %w", err)
	}
	// A read may pass maxBytes by its last event, so it reserves room for
	// the largest event read so far as well: the bytes on their way from
	// the server stay within the budget (and under the server's limit for
	// a slow consumer) once the first large event has been seen.
	reserve := int64(maxBytes) + l.largestRead.Load()
	if err := l.readBudget.Acquire(ctx, reserve); err != nil {
		return Batch{}, err
	}
	defer l.readBudget.Release(reserve)
	// Once asked, the server sends the whole batch whatever happens here,
	// so the batch is read to its end (within the timeout) even if ctx
	// ends: the reservation must cover the bytes until they have arrived.
	caller := ctx
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), readTimeout)
	defer cancel()
	if d, ok := caller.Deadline(); ok {
		ctx, cancel = context.WithDeadline(ctx, d)
		defer cancel()
	}
	if err := caller.Err(); err != nil {
		return Batch{}, err
	}
	// A plain inbox: one under the connection's request prefix (NewRespInbox)
	// also matches the wildcard subscription its requests share, so the
	// server would send every event of the batch twice, once to each.
	inbox := l.reads.NewInbox()
	// The server sends at most maxEvents events and one end-of-batch
	// message, so a channel with room for them (and one spare) never
	// overflows; SubscribeSync would allocate (and zero) a 64K-message
	// channel for every read.
	msgs := make(chan *nats.Msg, maxEvents+2)
	sub, err := l.reads.ChanSubscribe(inbox, msgs)
	if err != nil {
		return Batch{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	// A closed connection does not close a channel subscription's channel
	// (as it does SubscribeSync's): its closed handler ends the read.
	closed := make(chan struct{})
	var once sync.Once
	sub.SetClosedHandler(func(string) { once.Do(func() { close(closed) }) })
	if l.reads.IsClosed() {
		return Batch{}, fmt.Errorf("%w: %v", ErrUnavailable, nats.ErrConnectionClosed)
	}
	if err := l.reads.PublishRequest(l.readSubject, inbox, body); err != nil {
		return Batch{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	var b Batch
	for {
		var msg *nats.Msg
		select {
		case msg = <-msgs:
		case <-closed:
			return Batch{}, fmt.Errorf("%w: read: %v", ErrUnavailable, nats.ErrConnectionClosed)
		case <-ctx.Done():
			if caller.Err() != nil {
				return Batch{}, caller.Err()
			}
			return Batch{}, fmt.Errorf("%w: read: %v", ErrUnavailable, ctx.Err())
		}
		switch code := msg.Header.Get("Status"); code {
		case "":
		case "204": // end of batch
			if b.Pending, err = strconv.ParseUint(msg.Header.Get(numPendingHeader), 10, 64); err != nil {
				b.Pending = 0
			}
			return b, caller.Err()
		case "404": // nothing at or after the start
			return b, caller.Err()
		default:
			return Batch{}, fmt.Errorf("%w: read: status %s %s", ErrUnavailable, code, msg.Header.Get("Description"))
		}
		seq, err := strconv.ParseUint(msg.Header.Get(jetstream.SequenceHeader), 10, 64)
		if err != nil {
			return Batch{}, fmt.Errorf("%w: read: message without a sequence", ErrUnavailable)
		}
		pending, _ := strconv.ParseUint(msg.Header.Get(numPendingHeader), 10, 64)
		b.Events = append(b.Events, Stored{Seq: seq, Pending: pending, Raw: msg.Data, Trace: traceOf(msg.Header), lazy: &lazyEvent{}})
		b.Bytes += len(msg.Data)
		for n := int64(len(msg.Data)); ; {
			cur := l.largestRead.Load()
			if n <= cur || l.largestRead.CompareAndSwap(cur, n) {
				break
			}
		}
	}
}

// directGetRequest is JetStream's direct get request, batched.
type directGetRequest struct {
	Seq       uint64     `json:"seq,omitempty"`
	NextFor   string     `json:"next_by_subj,omitempty"`
	Batch     int        `json:"batch,omitempty"`
	MaxBytes  int        `json:"max_bytes,omitempty"`
	StartTime *time.Time `json:"start_time,omitempty"`
}

// consume feeds cons's messages to fn until ctx ends or the iterator is
// stopped (nil), the iterator fails (ErrUnavailable), or fn fails (its
// error as is). Heartbeats are short, so a consumer whose server went away
// is noticed (and recreated by the ordered consumer) within seconds.
//
// The client buffers at most maxBytes of messages; the library asks for
// more once half of them are taken, so maxBytes must hold at least two of
// the largest messages or a large one could never be delivered.
func consume(ctx context.Context, cons jetstream.Consumer, maxBytes int, fn func(jetstream.Msg) error) error {
	it, err := cons.Messages(jetstream.PullMaxBytes(maxBytes), jetstream.PullExpiry(5*time.Second), jetstream.PullHeartbeat(2*time.Second))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		if err := fn(msg); err != nil {
			return err
		}
	}
}

// feedBytes is what the process's one reader of the whole log may buffer:
// two of the largest messages (see consume), with room for their headers.
func (l *Log) feedBytes() int { return 2 * (int(l.feed.MaxPayload()) + 64<<10) }

// Scan reads up to limit events from start, stopping early when fn returns
// false, when it has read Config.ScanBytes of events, or when no event is
// left. It returns the position to continue from (0 when nothing is left).
// Only one subject filter is pushed down to the log; with several, Scan
// reads every event and fn must filter.
func (l *Log) Scan(ctx context.Context, start Start, subjects []string, limit int, fn func(Stored) bool) (next uint64, err error) {
	subject := ""
	if len(subjects) == 1 {
		subject = subjects[0]
	}
	read, bytes := 0, 0
	for read < limit {
		b, err := l.ReadBatch(ctx, start, subject, limit-read, min(l.cfg.ReadBatchBytes, l.cfg.ScanBytes-bytes))
		if err != nil {
			return 0, err
		}
		if len(b.Events) == 0 {
			return 0, nil
		}
		for _, s := range b.Events {
			read++
			bytes += len(s.Raw)
			if s.Event, err = s.Decoded(); err != nil {
				return 0, err
			}
			if !fn(s) || read >= limit || bytes >= l.cfg.ScanBytes {
				if s.Pending > 0 {
					return s.Seq + 1, nil
				}
				return 0, nil
			}
		}
		last := b.Events[len(b.Events)-1]
		if last.Pending == 0 {
			return 0, nil
		}
		start = Start{AfterSeq: last.Seq}
	}
	return 0, nil
}

// stored is a consumed message with its parsed metadata, not yet decoded.
func stored(msg jetstream.Msg, md *jetstream.MsgMetadata) Stored {
	return Stored{Seq: md.Sequence.Stream, Pending: md.NumPending, Raw: msg.Data(), Trace: traceOf(msg.Headers()), lazy: &lazyEvent{}}
}

// lazyEvent decodes an event once, for every goroutine that shares it.
type lazyEvent struct {
	once sync.Once
	ev   *hookstreamv1.Event
	err  error
}

// Decoded returns the event, decoding Raw on first use. It is safe to call
// from several goroutines on copies of one Stored.
func (s Stored) Decoded() (*hookstreamv1.Event, error) {
	if s.Event != nil {
		return s.Event, nil
	}
	if s.lazy == nil {
		s.lazy = &lazyEvent{}
	}
	s.lazy.once.Do(func() {
		ev := &hookstreamv1.Event{}
		if err := proto.Unmarshal(s.Raw, ev); err != nil {
			s.lazy.err = fmt.Errorf("eventlog: decode event at %d: %w", s.Seq, err)
			return
		}
		s.lazy.ev = ev
	})
	return s.lazy.ev, s.lazy.err
}
