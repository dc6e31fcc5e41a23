package delivery

import (
	"encoding/binary"
	"errors"
	"slices"
	"time"
)

// checkpoint is an endpoint's saved progress: every event up to Cursor
// is delivered, dead-lettered or among Jobs. Compact binary, since a
// failing endpoint may hold thousands of jobs.
type checkpoint struct {
	Cursor       uint64
	FailingSince time.Time
	RedriveSeq   uint64
	// Applied is the endpoint revision the worker ran with when it saved
	// (0 when not written): Engine.Apply on another replica waits for it.
	// It follows the jobs, where builds before it stop reading, so a
	// replica of either build reads the other's checkpoints (a rolling
	// upgrade).
	Applied uint64
	// Log is the incarnation of the event stream the positions belong to
	// (eventlog.Log.Incarnation; empty when not written). It follows
	// Applied, for the same reason.
	Log  string
	Jobs []*job
}

const checkpointVersion = 1

func (c checkpoint) encode() []byte {
	b := make([]byte, 0, 32+len(c.Jobs)*48)
	b = append(b, checkpointVersion)
	b = binary.AppendUvarint(b, c.Cursor)
	b = binary.AppendVarint(b, unixMilli(c.FailingSince))
	b = binary.AppendUvarint(b, c.RedriveSeq)
	b = binary.AppendUvarint(b, uint64(len(c.Jobs)))
	for _, j := range c.Jobs {
		b = binary.AppendUvarint(b, j.seq)
		b = binary.AppendUvarint(b, uint64(len(j.id)))
		b = append(b, j.id...)
		b = binary.LittleEndian.AppendUint64(b, j.key)
		b = binary.AppendUvarint(b, uint64(j.attempts))
		b = binary.AppendVarint(b, unixMilli(j.due))
		b = binary.AppendVarint(b, unixMilli(j.first))
		b = binary.AppendVarint(b, unixMilli(j.recv))
	}
	b = binary.AppendUvarint(b, c.Applied)
	b = binary.AppendUvarint(b, uint64(len(c.Log)))
	return append(b, c.Log...)
}

var errCheckpoint = errors.New("delivery: saved progress is damaged")

func decodeCheckpoint(b []byte) (checkpoint, error) {
	var c checkpoint
	if len(b) == 0 || b[0] != checkpointVersion {
		return c, errCheckpoint
	}
	r := reader{b: b[1:]}
	c.Cursor = r.uvarint()
	c.FailingSince = fromMilli(r.varint())
	c.RedriveSeq = r.uvarint()
	n := r.uvarint()
	if n > uint64(len(b)) {
		return c, errCheckpoint
	}
	for range n {
		j := &job{idx: -1}
		j.seq = r.uvarint()
		j.id = string(r.bytes(int(r.uvarint())))
		j.key = r.uint64()
		j.attempts = int(r.uvarint())
		j.due = fromMilli(r.varint())
		j.first = fromMilli(r.varint())
		j.recv = fromMilli(r.varint())
		c.Jobs = append(c.Jobs, j)
	}
	if len(r.b) > 0 { // not written by builds before it
		c.Applied = r.uvarint()
	}
	if len(r.b) > 0 { // nor this
		c.Log = string(r.bytes(int(r.uvarint())))
	}
	if r.bad {
		return c, errCheckpoint
	}
	return c, nil
}

type reader struct {
	b   []byte
	bad bool
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) uint64() uint64 {
	if len(r.b) < 8 {
		r.bad = true
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) bytes(n int) []byte {
	if n < 0 || n > len(r.b) {
		r.bad = true
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMilli(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// sortedJobs lists jobs in log order.
func sortedJobs(m map[uint64]*job) []*job {
	out := make([]*job, 0, len(m))
	for _, j := range m {
		out = append(out, j)
	}
	slices.SortFunc(out, func(a, b *job) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
	return out
}
