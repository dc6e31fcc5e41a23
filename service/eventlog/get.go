package eventlog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Reading an event by id.
//
// The dedup index knows every id of the last DedupWindow: Get answers
// those with an index probe and one confirming read. An older id can only
// be found by reading the log. An event's subject ends with its id's
// bucket (the first two hex digits, see Subject), so a search reads only
// that 1/256 of the log, one direct get per event ("the next event of the
// bucket from this position"), comparing each Nats-Msg-Id with the id.
// Config.LookupBudget caps those reads: no Get costs more, however long
// the log and whether or not the id exists.
//
// A search goes newest first: the events stored after the index's
// position (normally none), then, below the index's window, the log in
// chunks walked towards its start. It ends when it finds the id, when it
// has covered the whole range asked for (GetOptions; the whole log by
// default), which makes ErrNotFound an honest "not there", or when the
// budget is spent (ErrBudgetExhausted), saying which part it covered.
//
// Why single direct gets: nats-server (2.11 on; go.mod pins 2.15) can
// answer a direct get with a batch of messages, but for every batch
// request it first counts the filter's messages from the start position
// to the end of the stream (store.NumPending). For a wildcard filter such as a bucket's, the file
// store walks the subject state of every block on the shorter side of the
// start position, loading the blocks whose state has expired (after two
// minutes): a batch starting days back reads a large part of the log from
// disk, far more than the search itself. A filtered consumer costs the
// same count when it is created. A single direct get costs the server one
// positioned read.

// ErrBudgetExhausted is Get's answer when its budget of reads ran out
// before it found the id or covered the range; Lookup says what it did
// cover.
var ErrBudgetExhausted = errors.New("lookup budget exhausted")

const (
	// minLookupBudget is the smallest Config.LookupBudget: a search takes
	// a few reads to find its bounds.
	minLookupBudget = 16
	// chunkEvents is about how many events of a bucket one chunk of the
	// search holds. Every chunk costs one read beyond its events (the read
	// that finds the chunk's end), and a chunk cut short by the budget is
	// not counted as covered.
	chunkEvents = 64
	// firstChunkEvents is the size of the first chunk; each next one is
	// twice as large, up to chunkEvents, so recent events cost few reads.
	firstChunkEvents = 8
	// buckets is how many subject buckets share the log: the expected
	// distance between two events of one bucket, in log positions.
	buckets = 256
)

// GetOptions narrow a Get. The zero value searches the whole log.
type GetOptions struct {
	// After and Before bound when the event was stored in the log (zero:
	// unbounded).
	After, Before time.Time
}

// Lookup reports what a Get read and covered.
type Lookup struct {
	// Reads is how many messages Get read from the log (dedup index probes
	// are not log reads).
	Reads int
	// Budget is the most Reads could have been.
	Budget int
	// Indexed is set when the dedup index found the event.
	Indexed bool
	// From and To bound the store times the search covered completely:
	// every event of the id's bucket stored between them was checked, by
	// the dedup index or by reading. A zero From stands for the log's
	// start, a zero To for its end. When Get returns ErrNotFound they are
	// the range asked for.
	From, To time.Time
	// Reach is about how long a stretch of the log, in store time, the
	// budget can search beyond the dedup window, judged from the events
	// read (zero when too few were read to tell).
	Reach time.Duration
}

// Get returns the event with the given id and what finding it cost. An
// id the dedup index knows costs one read; any other at most
// Config.LookupBudget reads. ErrNotFound means no event with the id was
// stored in the range of opts (the whole log by default);
// ErrBudgetExhausted means the budget ran out first, and the Lookup says
// which part of the range was covered.
func (l *Log) Get(ctx context.Context, id string, opts GetOptions) (Stored, Lookup, error) {
	s := &search{l: l, id: id, filter: subject("", "", "", "", bucket(id)), budget: l.cfg.LookupBudget,
		leader: l.ns == nil}
	// What the index covers, read before probing it: every event stored
	// in the log up to indexed, at or after since. An event indexed after
	// the probe is not known to be in it.
	indexed, since, resets := l.index.coverage()
	raw, err := l.lookup(ctx, l.readRoute(), id, &s.reads)
	if l.index.resetCount() != resets {
		indexed = 0 // the index was emptied meanwhile and vouches for nothing
	}
	switch {
	case err != nil:
		return Stored{}, s.report(), err
	case raw != nil:
		st, err := decodeRaw(raw)
		lk := s.report()
		lk.Indexed = true
		return st, lk, err
	}
	if err := s.run(ctx, indexed, since, opts); err != nil {
		return Stored{}, s.report(), err
	}
	if s.found == nil {
		return Stored{}, s.report(), ErrNotFound
	}
	st, err := decodeRaw(s.found)
	return st, s.report(), err
}

// search is one Get's walk through the log.
type search struct {
	l      *Log
	id     string
	filter string // the id's bucket
	// leader reads the events the index has not seen through the stream
	// leader: on a cluster a follower answering a direct get may not have
	// them yet.
	leader bool
	budget int
	reads  int
	found  *jetstream.RawStreamMsg
	// from and to: what has been covered so far (see Lookup).
	from, to time.Time
	// What the chunk walk has read, for Lookup.Reach: its reads, and the
	// store times of the newest and oldest events it read.
	walkReads        int
	walkTop, walkLow time.Time
}

func (s *search) report() Lookup {
	lk := Lookup{Reads: s.reads, Budget: s.budget, From: s.from, To: s.to}
	if s.walkReads >= 16 && s.walkTop.After(s.walkLow) {
		lk.Reach = time.Duration(float64(s.walkTop.Sub(s.walkLow)) / float64(s.walkReads) * float64(s.budget))
	}
	return lk
}

// run searches the log for s.id, newest first: the events after the
// index's position, the index's window (free: the index did not know the
// id), then the older events chunk by chunk. It returns nil when it found
// the id or covered opts' range, with s.from and s.to set to that range.
func (s *search) run(ctx context.Context, indexed uint64, since time.Time, opts GetOptions) error {
	after, before := opts.After, opts.Before
	complete := func() error {
		s.from, s.to = after, before
		return nil
	}
	if !before.IsZero() && before.Before(after) {
		return complete()
	}

	if before.IsZero() || !before.Before(since) {
		// The tail: events stored after the index's position, normally
		// none (the index trails the log by milliseconds).
		s.from, s.to = since, since
		for seq := indexed + 1; ; {
			raw, err := s.next(ctx, msgGetRequest{Seq: seq}, s.leader)
			if err != nil || s.found != nil {
				return err
			}
			if raw == nil || !before.IsZero() && raw.Time.After(before) {
				break
			}
			s.to = raw.Time
			seq = raw.Sequence + 1
		}
		// The tail and the index's window are covered: the index does not
		// know the id.
		s.from, s.to = since, before
		if !after.Before(since) {
			return complete()
		}
	} else {
		s.from, s.to = before, before // nothing covered yet
	}

	// Older than the window: hi is the first position of the bucket
	// stored at or after the top of what is left to search.
	top := since
	if !before.IsZero() && before.Before(top) {
		top = before
	}
	raw, err := s.next(ctx, msgGetRequest{StartTime: natsTime(top)}, false)
	if err != nil || s.found != nil {
		return err
	}
	var hi uint64
	if raw != nil {
		hi = raw.Sequence
	} else {
		// Every event of the bucket was stored before top (possible with a
		// short window on an idle log): start after the last one.
		last, err := s.next(ctx, msgGetRequest{LastFor: s.filter}, false)
		if err != nil || s.found != nil {
			return err
		}
		if last == nil {
			return complete() // the bucket is empty
		}
		hi = last.Sequence + 1
	}
	s.from = top
	// lo is where the range starts: after its first event of the bucket,
	// read here.
	lo := uint64(1)
	if !after.IsZero() {
		raw, err := s.next(ctx, msgGetRequest{StartTime: natsTime(after)}, false)
		if err != nil || s.found != nil {
			return err
		}
		if raw == nil || raw.Sequence >= hi {
			return complete() // no event of the bucket in the range
		}
		lo = raw.Sequence + 1
	}

	// Walk [lo, hi) in chunks, newest first. A chunk is read oldest
	// first, so the first chunks are small (the newest events are found
	// in a few reads) and they grow to chunkEvents. span is the distance
	// between two events of the bucket, in positions: 256 on average,
	// since ids are uniform; measured as the walk goes.
	span, walked, seen := float64(buckets), uint64(0), 0
	for end, size := hi, firstChunkEvents; end > lo; size = min(2*size, chunkEvents) {
		left := s.budget - s.reads
		if left <= 0 {
			return ErrBudgetExhausted
		}
		// The last chunk that fits the budget is made small enough that
		// it most likely completes.
		want := min(size, max(1, left*3/4))
		start := lo
		if width := uint64(float64(want)*span) + 1; end-lo > width {
			start = end - width
		}
		reads := s.reads
		n, first, err := s.walk(ctx, start, end)
		s.walkReads += s.reads - reads
		if err != nil || s.found != nil {
			return err
		}
		if n > 0 {
			s.from, s.walkLow = first, first
		}
		walked, seen = walked+(end-start), seen+n
		if seen >= 16 {
			span = float64(walked) / float64(seen)
		}
		end = start
	}
	return complete()
}

// walk reads every event of the bucket in positions [start, end),
// returning how many there were and the store time of the first.
func (s *search) walk(ctx context.Context, start, end uint64) (n int, first time.Time, err error) {
	for seq := start; ; {
		raw, err := s.next(ctx, msgGetRequest{Seq: seq}, false)
		if err != nil || s.found != nil || raw == nil || raw.Sequence >= end {
			return n, first, err
		}
		if n == 0 {
			first = raw.Time
		}
		if raw.Time.After(s.walkTop) {
			s.walkTop = raw.Time
		}
		n++
		seq = raw.Sequence + 1
	}
}

// next reads the first event of the bucket at req's position (nil when
// there is none), and records it as found when it has the id. It fails
// with ErrBudgetExhausted when no read is left.
func (s *search) next(ctx context.Context, req msgGetRequest, leader bool) (*jetstream.RawStreamMsg, error) {
	if s.reads >= s.budget {
		return nil, ErrBudgetExhausted
	}
	s.reads++
	if req.LastFor == "" {
		req.NextFor = s.filter
	}
	// A client's read: on the reads connection, never the one ingest uses.
	raw, err := s.l.msgGet(ctx, s.l.reads, req, leader)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if raw.Header.Get(jetstream.MsgIDHeader) == s.id {
		s.found = raw
	}
	return raw, nil
}
