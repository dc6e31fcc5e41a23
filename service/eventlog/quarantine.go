package eventlog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// quarantineStreamName is the stream under a key-value bucket.
func quarantineStreamName(bucket string) string { return "KV_" + bucket }

// Quarantine stores q under q.Id unless an entry with that id exists (a
// vendor retry of the same bad request). It reports whether it stored it.
// A bucket at its size limit gives ErrQuarantineFull.
func (l *Log) Quarantine(ctx context.Context, q *hookstreamv1.QuarantinedRequest) (created bool, err error) {
	data, err := proto.Marshal(q)
	if err != nil {
		return false, fmt.Errorf("eventlog: encode quarantine entry: %w", err)
	}
	if int64(len(data))+1024 > l.nc.MaxPayload() {
		return false, ErrTooLarge
	}
	if err := l.disk.err(); err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.WriteTimeout)
	defer cancel()
	if _, err := l.quarantine.Create(ctx, q.GetId(), data); err != nil {
		switch {
		case errors.Is(err, jetstream.ErrKeyExists):
			// Stored already, perhaps a moment ago by a request that
			// still waits for its sync: so does this one.
			return false, l.Sync(ctx)
		case isFull(err):
			return false, ErrQuarantineFull
		}
		return false, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return true, l.Sync(ctx)
}

// storeFailed is JetStream's error code for a message the stream refused
// to store (JSStreamStoreFailedF); its description says why.
const storeFailed jetstream.ErrorCode = 10077

// isFull reports whether err is a stream refusing a write because it is at
// its size (or message count) limit, as a discard-new stream does.
func isFull(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != storeFailed {
		return false
	}
	return strings.Contains(apiErr.Description, "maximum bytes exceeded") ||
		strings.Contains(apiErr.Description, "maximum messages exceeded")
}

// QuarantineEntry returns one quarantined request and its revision, for an
// optimistic update.
func (l *Log) QuarantineEntry(ctx context.Context, id string) (*hookstreamv1.QuarantinedRequest, uint64, error) {
	e, err := l.quarantine.Get(ctx, id)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
			return nil, 0, ErrNotFound
		}
		return nil, 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	q := &hookstreamv1.QuarantinedRequest{}
	if err := proto.Unmarshal(e.Value(), q); err != nil {
		return nil, 0, fmt.Errorf("eventlog: decode quarantine entry %s: %w", id, err)
	}
	return q, e.Revision(), nil
}

// QuarantineScan is one bounded pass over the quarantine bucket's stream.
type QuarantineScan struct {
	// From is the first stream position to read (0: the oldest entry).
	From uint64
	// Until, when set, ends the pass before this position, leaving out
	// whatever was written after the caller took it (QuarantineStatus).
	Until uint64
	// MaxEntries and MaxBytes bound what one pass reads from the log:
	// entries, skipped ones and delete markers alike. The first entry is
	// read whatever its size, so a pass always makes progress.
	MaxEntries int
	MaxBytes   int
	// Batch is how many entries one fetch asks for (default and at most
	// 256); callers that expect to stop early ask for fewer.
	Batch int
}

// ScanQuarantine reads quarantine entries in the order they were last
// written (stream order) and calls fn with each entry and its revision
// until fn returns false or the pass's budget is spent. It returns the
// position to continue from, 0 when the pass reached the end of the bucket
// (or Until).
//
// The bucket keeps one revision per key (History 1), so every message of
// its stream is a key's current value or a delete marker: a pass sees
// each entry at most once, and an entry written again meanwhile moves
// behind the pass instead of being lost.
func (l *Log) ScanQuarantine(ctx context.Context, sc QuarantineScan, fn func(q *hookstreamv1.QuarantinedRequest, revision uint64) bool) (next uint64, err error) {
	if sc.MaxEntries <= 0 || sc.MaxBytes <= 0 {
		return 0, errors.New("eventlog: a quarantine scan needs a budget")
	}
	if sc.Until > 0 && sc.From >= sc.Until {
		return 0, nil
	}
	batch := sc.Batch
	if batch <= 0 || batch > 256 {
		batch = 256
	}
	cfg := jetstream.OrderedConsumerConfig{InactiveThreshold: time.Minute, DeliverPolicy: jetstream.DeliverAllPolicy}
	if sc.From > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, sc.From
	}
	cons, err := l.quarantineStream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	// The pass is short and bounded: remove its consumer when done rather
	// than leave it to the inactivity timeout.
	defer func() {
		name := cons.CachedInfo().Name
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = l.js.DeleteConsumer(ctx, quarantineStreamName(l.cfg.QuarantineBucket), name)
		}()
	}()
	pending := cons.CachedInfo().NumPending
	prefix := "$KV." + l.cfg.QuarantineBucket + "."
	var (
		read  uint64 // messages read
		bytes int    // their size, about as the server counts max_bytes
		last  uint64 // position of the last one
	)
	// handle takes one message; stop says the pass ends here, with end
	// set when it reached Until.
	handle := func(msg jetstream.Msg) (stop, end bool, err error) {
		md, err := msg.Metadata()
		if err != nil {
			return true, false, fmt.Errorf("eventlog: quarantine message metadata: %w", err)
		}
		if sc.Until > 0 && md.Sequence.Stream >= sc.Until {
			return true, true, nil
		}
		read++
		bytes += msgSize(msg)
		last = md.Sequence.Stream
		if op := msg.Headers().Get("KV-Operation"); op == "DEL" || op == "PURGE" {
			return false, false, nil
		}
		q := &hookstreamv1.QuarantinedRequest{}
		if err := proto.Unmarshal(msg.Data(), q); err != nil {
			l.log.WarnContext(ctx, "skipping an undecodable quarantine entry",
				"quarantine_id", strings.TrimPrefix(msg.Subject(), prefix), "revision", last, "err", err)
			return false, false, nil
		}
		return !fn(q, last), false, nil
	}
	more := func() uint64 {
		if read < pending {
			return last + 1
		}
		return 0
	}
	for read < pending && read < uint64(sc.MaxEntries) && bytes < sc.MaxBytes {
		want := min(pending-read, uint64(sc.MaxEntries)-read, uint64(batch))
		b, err := cons.Fetch(int(want), jetstream.FetchMaxBytes(sc.MaxBytes-bytes), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		got := 0
		for msg := range b.Messages() {
			got++
			stop, end, err := handle(msg)
			switch {
			case err != nil:
				return 0, err
			case end:
				return 0, nil
			case stop:
				return more(), nil
			}
		}
		// A next entry larger than what is left of the budget ends the
		// fetch with nothing for it (not an error).
		if err := b.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, jetstream.ErrMaxBytesExceeded) {
			return 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		if got > 0 {
			continue
		}
		if read > 0 {
			break // the next entry does not fit in the rest of the budget
		}
		// Nothing read yet: the first entry alone is larger than the whole
		// budget (take it anyway, so every pass makes progress), or the
		// entries aged out since the pass began.
		msg, err := cons.Next(jetstream.FetchMaxWait(2 * time.Second))
		if err != nil {
			if errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoMessages) {
				return 0, nil
			}
			return 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		stop, end, err := handle(msg)
		switch {
		case err != nil:
			return 0, err
		case end:
			return 0, nil
		case stop:
			return more(), nil
		}
	}
	return more(), nil
}

// msgSize is a consumed message's size as JetStream counts it for a pull
// request's max_bytes: subject, headers and data.
func msgSize(msg jetstream.Msg) int {
	n := len(msg.Subject()) + len(msg.Data())
	for k, vs := range msg.Headers() {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// QuarantineStatus describes the quarantine bucket.
type QuarantineStatus struct {
	// Entries counts the bucket's messages (delete markers included) and
	// Bytes their size.
	Entries, Bytes uint64
	// MaxBytes is the size limit (-1: none) and MaxAge how long an entry
	// is kept after its last write (0: forever).
	MaxBytes int64
	MaxAge   time.Duration
	// LastSeq is the position of the last write.
	LastSeq uint64
}

// QuarantineStatus reads the bucket's limits and usage.
func (l *Log) QuarantineStatus(ctx context.Context) (QuarantineStatus, error) {
	info, err := l.quarantineStream.Info(ctx)
	if err != nil {
		return QuarantineStatus{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return QuarantineStatus{
		Entries: info.State.Msgs, Bytes: info.State.Bytes,
		MaxBytes: info.Config.MaxBytes, MaxAge: info.Config.MaxAge,
		LastSeq: info.State.LastSeq,
	}, nil
}

// UpdateQuarantine replaces an entry if it is still at revision.
func (l *Log) UpdateQuarantine(ctx context.Context, q *hookstreamv1.QuarantinedRequest, revision uint64) error {
	data, err := proto.Marshal(q)
	if err != nil {
		return fmt.Errorf("eventlog: encode quarantine entry: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.WriteTimeout)
	defer cancel()
	if _, err := l.quarantine.Update(ctx, q.GetId(), data, revision); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return l.Sync(ctx)
}

// DiscardQuarantine removes an entry and every trace of its body; a small
// purge marker stays until the bucket's age limit removes it. It returns
// ErrNotFound when there is no entry with that id.
func (l *Log) DiscardQuarantine(ctx context.Context, id string) error {
	if _, err := l.quarantine.Get(ctx, id); err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
			return ErrNotFound
		}
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.WriteTimeout)
	defer cancel()
	// A purge rolls the key up into the marker, freeing the entry's bytes
	// at once; it is stored even when the bucket is full, since it
	// replaces a larger message of the same key.
	if err := l.quarantine.Purge(ctx, id); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return l.Sync(ctx)
}
