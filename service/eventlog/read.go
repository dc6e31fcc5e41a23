package eventlog

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

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
		t := s.Time
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &t
	case s.New:
		cfg.DeliverPolicy = jetstream.DeliverNewPolicy
	}
	return cfg
}

// Tail delivers events in log order, from start on and then as they are
// stored, to fn, until ctx ends (returning nil) or fn returns an error
// (returned as is). subjects narrow the events read (FilterSubject); none
// means all. fn runs on Tail's goroutine; while it blocks nothing more is
// read, and the consumer's buffer bounds the memory held.
//
// ready, when not nil, is called once the consumer exists, with the number
// of matching events already stored after the start position.
func (l *Log) Tail(ctx context.Context, start Start, subjects []string, ready func(pending uint64), fn func(Stored) error) error {
	cons, err := l.js.OrderedConsumer(ctx, l.cfg.Stream, start.consumerConfig(subjects))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if ready != nil {
		ready(cons.CachedInfo().NumPending)
	}
	return consume(ctx, cons, 256, func(msg jetstream.Msg) error {
		s, err := decode(msg, false)
		if err != nil {
			return err
		}
		return fn(s)
	})
}

// consume feeds cons's messages to fn until ctx ends or the iterator is
// stopped (nil), the iterator fails (ErrUnavailable), or fn fails (its
// error as is). Heartbeats are short, so a consumer whose server went away
// is noticed (and recreated by the ordered consumer) within seconds.
func consume(ctx context.Context, cons jetstream.Consumer, batch int, fn func(jetstream.Msg) error) error {
	it, err := cons.Messages(jetstream.PullMaxMessages(batch), jetstream.PullExpiry(5*time.Second), jetstream.PullHeartbeat(2*time.Second))
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

// Scan reads up to limit events from start, stopping early when fn returns
// false or the events stored when Scan began are exhausted. It returns the
// position to continue from (0 when nothing is left).
func (l *Log) Scan(ctx context.Context, start Start, subjects []string, limit int, fn func(Stored) bool) (next uint64, err error) {
	cons, err := l.js.OrderedConsumer(ctx, l.cfg.Stream, start.consumerConfig(subjects))
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	pending := cons.CachedInfo().NumPending
	if pending == 0 {
		return 0, nil
	}
	n := uint64(limit)
	if pending < n {
		n = pending
	}
	var last uint64
	for read := uint64(0); read < n; {
		batch, err := cons.Fetch(int(min(n-read, 256)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		got := 0
		for msg := range batch.Messages() {
			if err := ctx.Err(); err != nil {
				return 0, err // the caller went away or is shutting down
			}
			got++
			read++
			s, err := decode(msg, true)
			if err != nil {
				return 0, err
			}
			last = s.Seq
			if !fn(s) {
				if read < pending {
					return last + 1, nil
				}
				return 0, nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		if got == 0 {
			break
		}
	}
	if pending > n {
		return last + 1, nil
	}
	return 0, nil
}

// decode reads a consumed message. With eager unset the event itself is
// decoded only when asked for (Stored.Decoded): a stream without a filter
// sends the stored bytes as they are.
func decode(msg jetstream.Msg, eager bool) (Stored, error) {
	md, err := msg.Metadata()
	if err != nil {
		return Stored{}, fmt.Errorf("eventlog: message metadata: %w", err)
	}
	s := stored(msg, md)
	if eager {
		if s.Event, err = s.Decoded(); err != nil {
			return Stored{}, err
		}
	}
	return s, nil
}

// stored is a consumed message with its parsed metadata, not yet decoded.
func stored(msg jetstream.Msg, md *jetstream.MsgMetadata) Stored {
	return Stored{Seq: md.Sequence.Stream, Pending: md.NumPending, Raw: msg.Data(), lazy: &lazyEvent{}}
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
