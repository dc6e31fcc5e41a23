package eventlog

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookstream/hookstream/internal/idindex"
)

// samplesPerBand is how many positions verifyIndex checks in each band of
// positions up to the checkpoint cp: [cp], [cp-2, cp-1], [cp-6, cp-3], …,
// each twice as wide as the one after it. Bands grow geometrically, so a few dozen reads
// cover a window of millions of events and every segment gets a share.
const samplesPerBand = 4

// verifyIndex checks a sample of the events the checkpoint says the
// index holds against the log: each one still in the dedup window must
// be in the index. Segment files whose slots were zeroed or overwritten
// keep a valid header, so only the log can tell; an index that fails is
// rebuilt. It returns how many events it checked, and an error naming
// the first event the index misses.
func (l *Log) verifyIndex(ctx context.Context, idx *idindex.Index, cp idindex.Checkpoint, first uint64, since time.Time) (int, error) {
	checked := 0
	first = max(first, 1)
	hi := cp.Seq
	for width := uint64(1); hi >= first; width *= 2 {
		lo := first
		if hi-first >= width {
			lo = hi - width + 1
		}
		for range samplesPerBand {
			seq := lo + rand.Uint64N(hi-lo+1)
			raw, err := l.stream.GetMsg(ctx, seq)
			switch {
			case errors.Is(err, jetstream.ErrMsgNotFound):
				continue // expired, or a lost or skipped position
			case err != nil:
				return checked, fmt.Errorf("%w: %v", ErrUnavailable, err)
			}
			if raw.Time.Before(since) {
				return checked, nil // older bands are past the dedup window
			}
			id := raw.Header.Get(jetstream.MsgIDHeader)
			if id == "" {
				continue
			}
			checked++
			if _, found, err := idx.Lookup(idindex.KeyOf(id)); err != nil {
				return checked, err
			} else if !found {
				return checked, fmt.Errorf("event %s at position %d is in the log but not in the index", id, seq)
			}
		}
		if lo == first {
			break
		}
		hi = lo - 1
	}
	return checked, nil
}
