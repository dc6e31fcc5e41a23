package eventlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookstream/hookstream/internal/idindex"
)

// lookup returns the stored event with this id, nil when the index does
// not know it. A hit is confirmed by reading the original, so a stale or
// damaged index can never turn a new event into a "duplicate". On a
// cluster a direct get may be answered by a follower that is behind, so a
// miss there is asked again of the stream leader. The reads go over conn:
// the ingest connection for an append's dedup check, the client-read one
// for GetEvent. reads, when not nil, counts the log reads made.
func (l *Log) lookup(ctx context.Context, conn route, id string, reads *int) (*jetstream.RawStreamMsg, error) {
	e, ok, err := l.index.idx.Lookup(idindex.KeyOf(id))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if !ok {
		return nil, nil
	}
	l.msgReads.Add(1)
	if reads != nil {
		*reads++
	}
	raw, err := conn.stream.GetMsg(ctx, e.Seq)
	if err == nil && raw.Header.Get(jetstream.MsgIDHeader) == id {
		return raw, nil
	}
	if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if l.ns != nil { // embedded: one server, no followers
		return nil, nil
	}
	if reads != nil {
		*reads++
	}
	raw, err = l.msgGet(ctx, conn.nc, msgGetRequest{Seq: e.Seq}, true)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	case raw.Header.Get(jetstream.MsgIDHeader) != id:
		return nil, nil
	}
	return raw, nil
}

// route is one of the log's connections and the stream as seen through it.
type route struct {
	stream jetstream.Stream
	nc     *nats.Conn
}

// ingestRoute carries appends and their dedup checks; readRoute what
// clients ask for.
func (l *Log) ingestRoute() route { return route{l.stream, l.nc} }
func (l *Log) readRoute() route   { return route{l.rstream, l.reads} }

// msgGetRequest is the JetStream API's message get request: a position
// (Seq, or the first message stored at or after StartTime), optionally
// the first message on NextFor from there; or the last message on
// LastFor.
type msgGetRequest struct {
	Seq       uint64     `json:"seq,omitempty"`
	StartTime *time.Time `json:"start_time,omitempty"`
	NextFor   string     `json:"next_by_subj,omitempty"`
	LastFor   string     `json:"last_by_subj,omitempty"`
}

// msgGet reads one message over nc: with leader through the stream
// leader (the JetStream API's message get), otherwise with a direct get,
// which any replica may answer. A request that matches nothing gets
// jetstream.ErrMsgNotFound.
func (l *Log) msgGet(ctx context.Context, nc *nats.Conn, req msgGetRequest, leader bool) (*jetstream.RawStreamMsg, error) {
	l.msgReads.Add(1)
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if !leader {
		return directGet(ctx, nc, l.cfg.Stream, body)
	}
	resp, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+l.cfg.Stream, body)
	if err != nil {
		return nil, err
	}
	var out struct {
		Message *struct {
			Subject string    `json:"subject"`
			Seq     uint64    `json:"seq"`
			Header  []byte    `json:"hdrs"`
			Data    []byte    `json:"data"`
			Time    time.Time `json:"time"`
		} `json:"message"`
		Error *struct {
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &out); err != nil {
		return nil, fmt.Errorf("message get: %w", err)
	}
	switch {
	case out.Error != nil && out.Error.ErrCode == int(jetstream.JSErrCodeMessageNotFound):
		return nil, jetstream.ErrMsgNotFound
	case out.Error != nil:
		return nil, fmt.Errorf("message get: %s", out.Error.Description)
	case out.Message == nil:
		return nil, errors.New("message get: empty answer")
	}
	raw := &jetstream.RawStreamMsg{Subject: out.Message.Subject, Sequence: out.Message.Seq, Data: out.Message.Data, Time: out.Message.Time}
	if len(out.Message.Header) > 0 {
		if raw.Header, err = nats.DecodeHeadersMsg(out.Message.Header); err != nil {
			return nil, fmt.Errorf("message get: %w", err)
		}
	}
	return raw, nil
}

// DirectGetLast reads the last message stored in stream on subject, which
// may hold wildcards, with one direct get (the request in the body, so the
// subject need not be publishable): any replica may answer, so on a
// cluster it can lag the stream leader by the replication delay. The
// stream must allow direct gets. A subject with no message gets
// jetstream.ErrMsgNotFound.
func DirectGetLast(ctx context.Context, nc *nats.Conn, stream, subject string) (*jetstream.RawStreamMsg, error) {
	body, err := json.Marshal(msgGetRequest{LastFor: subject})
	if err != nil {
		return nil, err
	}
	return directGet(ctx, nc, stream, body)
}

// directGet sends one direct get request (body, a msgGetRequest as JSON)
// for stream's messages and reads its answer.
func directGet(ctx context.Context, nc *nats.Conn, stream string, body []byte) (*jetstream.RawStreamMsg, error) {
	resp, err := nc.RequestWithContext(ctx, directGetPrefix+stream, body)
	if err != nil {
		return nil, err
	}
	return directMsg(resp)
}

// directGetPrefix is the subject of a stream's direct gets, less its name.
const directGetPrefix = "$JS.API.DIRECT.GET."

// directMsg reads a direct get's answer: the stored message, with its
// position, subject and store time in headers, or a status such as 404.
func directMsg(m *nats.Msg) (*jetstream.RawStreamMsg, error) {
	if len(m.Data) == 0 {
		switch status := m.Header.Get("Status"); status {
		case "":
		case "404":
			return nil, jetstream.ErrMsgNotFound
		default:
			return nil, fmt.Errorf("direct get: %s %s", status, m.Header.Get("Description"))
		}
	}
	seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("direct get: position: %w", err)
	}
	at, err := time.Parse(time.RFC3339Nano, m.Header.Get(jetstream.TimeStampHeaer))
	if err != nil {
		return nil, fmt.Errorf("direct get: store time: %w", err)
	}
	return &jetstream.RawStreamMsg{Subject: m.Header.Get(jetstream.SubjectHeader), Sequence: seq, Header: m.Header, Data: m.Data, Time: at}, nil
}

// natsTime is t as a start time to send to the server, in UTC, held to
// the range of int64 nanoseconds since 1970 (1970-01-01 to 2262-04-11):
// the server counts in those, and a time outside wraps around, so a
// request for what was stored after the year 9999 read the whole log and
// one for after 1600 read nothing. Every event is stored inside the range.
func natsTime(t time.Time) *time.Time {
	switch lo, hi := time.Unix(0, 0), time.Unix(0, math.MaxInt64); {
	case t.Before(lo):
		t = lo
	case t.After(hi):
		t = hi
	}
	t = t.UTC()
	return &t
}

// DirectGetNext reads the first message stored in stream on subject, which
// may hold wildcards, at or after time since, with one direct get (see
// DirectGetLast).
func DirectGetNext(ctx context.Context, nc *nats.Conn, stream, subject string, since time.Time) (*jetstream.RawStreamMsg, error) {
	body, err := json.Marshal(msgGetRequest{StartTime: natsTime(since), NextFor: subject})
	if err != nil {
		return nil, err
	}
	return directGet(ctx, nc, stream, body)
}
