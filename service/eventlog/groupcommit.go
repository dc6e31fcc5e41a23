package eventlog

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookstream/hookstream/service/tracing"
)

// Group commit: concurrent appends share one write to the log.
//
// With fsync: always the embedded server syncs the disk after every message
// it stores, one message after another, so ingest runs at one event per
// fsync. An atomic batch (JetStream's Nats-Batch-* headers, nats-server
// 2.12+) is stored with one sync for all of its messages, and its one
// acknowledgement comes after that sync. So, with group commit on, Append
// queues its message, and one goroutine per Log (the committer) takes
// whatever is queued, up to groupMaxMsgs messages or groupMaxBytes bytes,
// and writes it: groupMinBatch messages or more as one atomic batch, fewer
// as plain publishes, all at once (no delay when the log is idle: the
// committer never waits for a batch to fill). Each caller still waits for
// the acknowledgement of the write that holds its own message, so a 2xx
// still means the event is in the log, and with fsync: always on disk.
// While a write is in flight the next callers queue, and the busier the
// log the larger the batches.
//
// A batch stores all of its messages or none. When the server refuses one
// (a message in it is a duplicate of one in the log, the log is
// unavailable, a timeout, ...) every caller of the batch publishes its own
// message alone, as without group commit: one vendor retry never fails the
// requests it happened to share a batch with, and the duplicate gets the
// original's position from JetStream's dedup.

const (
	// groupMaxMsgs caps the messages of one batch (the server's own limit
	// is 1,000).
	groupMaxMsgs = 256
	// groupMaxBytes caps the bytes of one batch's events; a batch holds
	// at least one message whatever its size.
	groupMaxBytes = 1 << 20
	// groupMinBatch is the fewest appends worth a batch. An atomic batch
	// on a single-replica file store costs about seven syncs whatever its
	// size (its messages are staged in a store of their own, with its own
	// metadata, synced, then written to the stream and synced once more),
	// where a lone publish costs one: measured here, 8 appends took
	// about as long either way, 30 three times less as a batch
	// (BenchmarkAppendParallel). Fewer are published one by one.
	groupMinBatch = 8
)

// Headers of JetStream's atomic batch publish.
const (
	batchIDHeader     = "Nats-Batch-Id"
	batchSeqHeader    = "Nats-Batch-Sequence"
	batchCommitHeader = "Nats-Batch-Commit"
)

// GroupCommit says when concurrent appends share one write to the log.
type GroupCommit string

const (
	// GroupCommitAuto (the default) lets concurrent writes share one
	// fsync where it pays, on the embedded server with SyncAlways: with
	// shared syncs (syncer) on Linux, atomic batches elsewhere.
	GroupCommitAuto GroupCommit = "auto"
	// GroupCommitOn groups appends into atomic batches whatever the
	// durability, on an external server too (which must support atomic
	// batches: nats-server 2.12+).
	GroupCommitOn GroupCommit = "on"
	// GroupCommitOff writes every append on its own.
	GroupCommitOff GroupCommit = "off"
)

// groupCommit reports whether cfg asks for group commit.
func (c *Config) groupCommit() bool {
	switch c.GroupCommit {
	case GroupCommitOn:
		return true
	case GroupCommitOff:
		return false
	default:
		return c.autoGroups() && !canSyncFS
	}
}

// sharedSync reports whether writes share syncs (see syncer): what
// GroupCommitAuto does where the platform has syncfs.
func (c *Config) sharedSync() bool {
	return c.GroupCommit != GroupCommitOn && c.GroupCommit != GroupCommitOff && c.autoGroups() && canSyncFS
}

// autoGroups says whether GroupCommitAuto groups writes: on the embedded
// server with SyncAlways, where it pays.
func (c *Config) autoGroups() bool { return c.URL == "" && c.SyncAlways }

// queued is one Append waiting for the committer.
type queued struct {
	ctx   context.Context
	subj  string
	data  []byte
	id    string
	until time.Time // the Append's deadline
	done  chan committed
}

// committed is what the committer tells one Append.
type committed struct {
	app Appended
	// alone: the batch failed; the caller publishes its message itself.
	alone bool
	err   error
}

// committer writes queued appends, one write at a time.
type committer struct {
	l      *Log
	prefix string        // of batch ids, unique to this committer
	n      uint64        // batches so far, for batch ids
	wake   chan struct{} // something was queued
	done   chan struct{} // the loop has ended

	mu     sync.Mutex
	queue  []*queued
	closed bool

	stats batchStats
	// beforeWrite, when set (tests), runs before each write is taken from
	// the queue.
	beforeWrite atomic.Pointer[func()]
}

func newCommitter(l *Log) *committer {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	c := &committer{l: l, prefix: fmt.Sprintf("hs%x-", b), wake: make(chan struct{}, 1), done: make(chan struct{})}
	go c.loop()
	return c
}

// append queues a message and waits for its write, or for ctx. A caller
// that gives up returns at once: its message is dropped if its write has
// not begun, and may still be stored if it has (a vendor retry is then a
// duplicate).
func (c *committer) append(ctx context.Context, subj string, data []byte, id string) (committed, error) {
	until, ok := ctx.Deadline()
	if !ok {
		until = time.Now().Add(c.l.cfg.WriteTimeout)
	}
	q := &queued{ctx: ctx, subj: subj, data: data, id: id, until: until, done: make(chan committed, 1)}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return committed{}, fmt.Errorf("%w: closing", ErrUnavailable)
	}
	c.queue = append(c.queue, q)
	select {
	case c.wake <- struct{}{}:
	default:
	}
	c.mu.Unlock()
	select {
	case r := <-q.done:
		return r, r.err
	case <-ctx.Done():
		return committed{}, fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
	}
}

// close fails what is queued and stops the committer once its write in
// flight is done.
func (c *committer) close() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.wake)
	}
	c.mu.Unlock()
	<-c.done
}

func (c *committer) loop() {
	defer close(c.done)
	for range c.wake {
		for {
			if f := c.beforeWrite.Load(); f != nil {
				(*f)()
			}
			batch := c.take()
			if len(batch) == 0 {
				break
			}
			c.write(batch)
		}
	}
	c.mu.Lock()
	queue := c.queue
	c.queue = nil
	c.mu.Unlock()
	for _, q := range queue {
		q.done <- committed{err: fmt.Errorf("%w: closing", ErrUnavailable)}
	}
}

// take removes the next batch from the queue: up to groupMaxMsgs messages
// and groupMaxBytes bytes, and no id twice (a batch with a duplicate fails
// as a whole; the repeat goes into the next write, where JetStream's dedup
// answers it). Appends whose callers have gone are dropped.
func (c *committer) take() []*queued {
	c.mu.Lock()
	defer c.mu.Unlock()
	var (
		batch []*queued
		bytes int
		ids   map[string]struct{}
	)
	i := 0
	for ; i < len(c.queue) && len(batch) < groupMaxMsgs; i++ {
		q := c.queue[i]
		if err := q.ctx.Err(); err != nil {
			q.done <- committed{err: fmt.Errorf("%w: %v", ErrUnavailable, err)}
			continue
		}
		if len(batch) > 0 && bytes+len(q.data) > groupMaxBytes {
			break
		}
		if len(batch) == 1 {
			ids = map[string]struct{}{batch[0].id: {}}
		}
		if ids != nil {
			if _, dup := ids[q.id]; dup {
				break
			}
			ids[q.id] = struct{}{}
		}
		batch = append(batch, q)
		bytes += len(q.data)
	}
	n := copy(c.queue, c.queue[i:])
	clear(c.queue[n:])
	c.queue = c.queue[:n]
	return batch
}

// write stores batch: as plain publishes when it is small, or as one
// atomic batch. Each write ends by its appends' deadlines, whatever their
// callers do meanwhile.
func (c *committer) write(batch []*queued) {
	if len(batch) < groupMinBatch {
		// Too few to pay for a batch: publish each on its own, all at once
		// (the server still syncs them one by one), and wait for them all,
		// so that what arrives meanwhile queues up for the next write.
		c.stats.observe(1, len(batch))
		alone := func(q *queued) {
			ctx, cancel := context.WithDeadline(context.Background(), q.until)
			defer cancel()
			app, err := c.l.publish(ctx, newMsg(q.ctx, q.subj, q.data, q.id, c.l.cfg.Stream))
			q.done <- committed{app: app, err: err}
		}
		if len(batch) == 1 {
			alone(batch[0])
			return
		}
		var wg sync.WaitGroup
		for _, q := range batch {
			wg.Go(func() { alone(q) })
		}
		wg.Wait()
		return
	}
	// The batch must be stored within every one of its appends' deadlines
	// (each is within its dedup guard).
	until := batch[0].until
	for _, q := range batch[1:] {
		if q.until.Before(until) {
			until = q.until
		}
	}
	ctx, cancel := context.WithDeadline(context.Background(), until)
	defer cancel()
	c.stats.observe(len(batch), 1)
	first, err := c.publishBatch(ctx, batch)
	if err != nil {
		c.stats.failed.Add(1)
		c.l.log.Debug("group commit: batch refused; its appends are published one by one", "size", len(batch), "err", err)
		for _, q := range batch {
			q.done <- committed{alone: true}
		}
		return
	}
	for i, q := range batch {
		q.done <- committed{app: Appended{Seq: first + uint64(i)}}
	}
}

// publishBatch publishes batch as one atomic batch and returns the
// position of its first message (the others follow it).
func (c *committer) publishBatch(ctx context.Context, batch []*queued) (uint64, error) {
	c.n++
	id := c.prefix + strconv.FormatUint(c.n, 36)
	nc := c.l.nc
	var last *nats.Msg
	for i, q := range batch {
		m := newMsg(q.ctx, q.subj, q.data, q.id, c.l.cfg.Stream)
		m.Header[batchIDHeader] = []string{id}
		m.Header[batchSeqHeader] = []string{strconv.Itoa(i + 1)}
		if i == len(batch)-1 {
			m.Header[batchCommitHeader] = []string{"1"}
			last = m
			break
		}
		// No reply: a message the server cannot stage fails the batch,
		// and the commit's answer says so.
		if err := nc.PublishMsg(m); err != nil {
			return 0, err
		}
	}
	resp, err := nc.RequestMsgWithContext(ctx, last)
	if err != nil {
		return 0, err
	}
	var ack struct {
		Seq   uint64 `json:"seq"`
		Batch string `json:"batch"`
		Count int    `json:"count"`
		Error *struct {
			Code        int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &ack); err != nil {
		return 0, fmt.Errorf("batch ack: %w", err)
	}
	switch {
	case ack.Error != nil:
		return 0, fmt.Errorf("batch: %s (%d)", ack.Error.Description, ack.Error.Code)
	case ack.Batch != id || ack.Count != len(batch) || ack.Seq < uint64(len(batch)):
		return 0, fmt.Errorf("batch ack %q does not match batch %s of %d", resp.Data, id, len(batch))
	}
	return ack.Seq - uint64(len(batch)) + 1, nil
}

// newMsg is the log message of one event.
func newMsg(ctx context.Context, subj string, data []byte, id, stream string) *nats.Msg {
	msg := &nats.Msg{Subject: subj, Data: data, Header: nats.Header{
		jetstream.MsgIDHeader:          []string{id},
		jetstream.ExpectedStreamHeader: []string{stream},
	}}
	// The span appending the event (if tracing is on) is stored with it,
	// so that its deliveries, on any replica, continue the same trace.
	if tc := tracing.FromContext(ctx); tc.Parent != "" {
		msg.Header[tracing.HeaderParent] = []string{tc.Parent}
		if tc.State != "" {
			msg.Header[tracing.HeaderState] = []string{tc.State}
		}
	}
	return msg
}

// publish stores one message on its own.
func (l *Log) publish(ctx context.Context, msg *nats.Msg) (Appended, error) {
	ack, err := l.js.PublishMsg(ctx, msg)
	if err != nil {
		return Appended{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return Appended{Seq: ack.Sequence, Duplicate: ack.Duplicate}, nil
}

// batchSizeBounds are the upper bounds of the batch size histogram.
var batchSizeBounds = [...]uint64{1, 2, 4, 8, 16, 32, 64, 128, 256}

// batchStats counts the writes of the committer.
type batchStats struct {
	buckets [len(batchSizeBounds)]atomic.Uint64 // not cumulative
	count   atomic.Uint64
	sum     atomic.Uint64
	failed  atomic.Uint64
}

// observe counts writes writes of n appends each.
func (s *batchStats) observe(n, writes int) {
	s.count.Add(uint64(writes))
	s.sum.Add(uint64(n * writes))
	for i, b := range batchSizeBounds {
		if uint64(n) <= b {
			s.buckets[i].Add(uint64(writes))
			return
		}
	}
}

// AppendStats describes the writes of group commit.
type AppendStats struct {
	// GroupCommit is whether appends are grouped at all; the rest is zero
	// when they are not.
	GroupCommit bool
	// Writes to the log and the appends they held: a write of one append
	// is a plain publish, of more an atomic batch.
	Writes, Appends uint64
	// Buckets maps an upper bound of appends per write to how many writes
	// held at most that many (cumulative, as Prometheus has it).
	Buckets map[float64]uint64
	// Failed counts batches the server refused, whose appends were then
	// published one by one.
	Failed uint64
	// SharedSync is whether writes share syncs (see Log.Sync); Syncs
	// counts the syncs and SyncedWrites the writes that waited for one.
	SharedSync          bool
	Syncs, SyncedWrites uint64
}

// AppendStats reports how appends were grouped into writes and syncs.
func (l *Log) AppendStats() AppendStats {
	var st AppendStats
	if l.syncer != nil {
		st.SharedSync, st.Syncs, st.SyncedWrites = true, l.syncer.syncs.Load(), l.syncer.waits.Load()
	}
	if l.group == nil {
		return st
	}
	s := &l.group.stats
	st.GroupCommit, st.Writes, st.Appends, st.Failed = true, s.count.Load(), s.sum.Load(), s.failed.Load()
	st.Buckets = make(map[float64]uint64, len(batchSizeBounds))
	var cum uint64
	for i, b := range batchSizeBounds {
		cum += s.buckets[i].Load()
		st.Buckets[float64(b)] = cum
	}
	return st
}
