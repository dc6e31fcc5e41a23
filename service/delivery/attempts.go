package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/delivery/webhook"
	"github.com/hookstream/hookstream/service/eventlog"
)

// attemptRecord describes an attempt; secrets never reach it (the
// client's errors carry none, and the request is not recorded).
func attemptRecord(endpoint, eventID string, n int, cursor string, sent time.Time, r webhook.Result) *hookstreamv1.DeliveryAttempt {
	if sent.IsZero() {
		sent = time.Now()
	}
	return &hookstreamv1.DeliveryAttempt{
		Id: NewID("att_"), EndpointId: endpoint, EventId: eventID, Attempt: uint32(n), Time: timestamppb.New(sent),
		Latency: durationpb.New(r.Latency), StatusCode: int32(r.Status), Error: r.Err,
		ResponseBody: strings.ToValidUTF8(string(r.Body), string(utf8.RuneError)), Cursor: cursor,
	}
}

// recordAttempt adds an attempt of the event at log position seq (0: a
// test event) to the attempts log without waiting: the log of attempts
// is for people, and delivery does not depend on it.
func (e *Engine) recordAttempt(a *hookstreamv1.DeliveryAttempt, seq uint64) {
	e.rec.add(a, seq)
}

// startCursor is the log position before an endpoint's first event.
func startCursor(ctx context.Context, log *eventlog.Log, ep *hookstreamv1.Endpoint) (uint64, error) {
	switch {
	case ep.GetStartPosition() == hookstreamv1.StartPosition_START_POSITION_BEGINNING:
		return 0, nil
	case ep.GetStartTime() != nil:
		b, err := log.ReadBatch(ctx, eventlog.Start{Time: ep.GetStartTime().AsTime()}, "", 1, 0)
		if err != nil {
			return 0, err
		}
		if len(b.Events) > 0 {
			return b.Events[0].Seq - 1, nil
		}
	}
	return log.LastSeq(ctx)
}

// Init records where a new endpoint starts, before the endpoint is
// stored, so no event stored after CreateEndpoint returns is missed.
func (e *Engine) Init(ctx context.Context, ep *hookstreamv1.Endpoint) error {
	cur, err := startCursor(ctx, e.o.Log, ep)
	if err != nil {
		return err
	}
	_, err = e.state.Put(ctx, ep.GetId(), checkpoint{Cursor: cur, Log: e.o.Log.Incarnation()}.encode())
	return err
}

// Forget removes what Init recorded for an endpoint that was not created
// after all (the store refused it), best effort: refused creates must not
// pile up records.
func (e *Engine) Forget(ctx context.Context, id string) {
	_ = e.state.Purge(ctx, id)
}

// readSubject reads messages of one of delivery's streams on subject from
// position from on, at most limit, calling fn for each until it says
// stop. It returns the position after the last one read.
func (e *Engine) readSubject(ctx context.Context, stream, subject string, from uint64, limit int, fn func(*jetstream.RawStreamMsg) bool) (uint64, error) {
	st := e.o.Store.streams[stream]
	for range limit {
		m, err := st.GetMsg(ctx, max(from, 1), jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return from, nil
		}
		if err != nil {
			return from, err
		}
		from = m.Sequence + 1
		if !fn(m) {
			break
		}
	}
	return from, nil
}

// AttemptQuery selects the attempts Attempts lists: of one endpoint, of
// one event (to every endpoint or one), and of those only the ones made at
// or after Since when it is set.
type AttemptQuery struct {
	Endpoint, EventID string
	Since             time.Time
}

// storeClockSlack is how far before a time the attempts log is read from
// to find the records of attempts made at or after it: a record is stored
// after its attempt, but the store's clock (a cluster node's) may be behind
// the clock of the replica that made the attempt.
const storeClockSlack = time.Minute

// Attempts lists attempts oldest first, as q selects them. from is the
// position to read from (a page token), and the next one is returned (0
// when none remain).
//
// An event's attempts are on its log position's key (attemptKey), read
// from the time it was received: the event is looked up in the log (one
// read within the dedup window, at most log.lookup_budget beyond). A test
// event, which is not in the log and has one attempt, is looked for first
// on its own key. With q.Since, the first page starts at the first record
// stored at or after it (less storeClockSlack) and every page leaves out
// attempts made before it.
func (e *Engine) Attempts(ctx context.Context, q AttemptQuery, from uint64, limit int) ([]*hookstreamv1.DeliveryAttempt, uint64, error) {
	var out []*hookstreamv1.DeliveryAttempt
	endpoint, eventID := q.Endpoint, q.EventID
	take := func(a *hookstreamv1.DeliveryAttempt) bool {
		if eventID != "" && a.GetEventId() != eventID {
			return true
		}
		if !q.Since.IsZero() && a.GetTime().AsTime().Before(q.Since) {
			return true
		}
		out = append(out, a)
		return len(out) < limit
	}
	subject := attemptsPrefix + "." + endpoint + ".>"
	var since time.Time
	if !q.Since.IsZero() && from == 0 {
		since = q.Since.Add(-storeClockSlack)
	}
	if eventID != "" {
		ep := endpoint
		if ep == "" {
			ep = "*"
		}
		if from == 0 {
			if _, err := e.readAttempts(ctx, attemptSubject(ep, 0, eventID), 0, time.Time{}, testEventScan, take); err != nil {
				return nil, 0, fmt.Errorf("delivery: read attempts: %w", err)
			}
			if len(out) > 0 {
				return out, 0, nil
			}
		}
		st, _, err := e.o.Log.Get(ctx, eventID, eventlog.GetOptions{})
		switch {
		case errors.Is(err, eventlog.ErrNotFound):
			return nil, 0, nil
		case err != nil: // ErrBudgetExhausted among them
			return nil, 0, fmt.Errorf("delivery: look up event %s: %w", eventID, err)
		}
		subject = attemptSubject(ep, st.Seq, eventID)
		if t := st.Event.GetReceivedAt(); from == 0 && t != nil {
			// Store times lag received_at, and clocks of a cluster's
			// nodes may disagree a little.
			recv := t.AsTime()
			if now := time.Now(); recv.After(now) {
				recv = now
			}
			if recv = recv.Add(-storeClockSlack); recv.After(since) {
				since = recv
			}
		}
	}
	// Reading an event's key skips other events' attempts: a bounded
	// number of reads per page.
	next, err := e.readAttempts(ctx, subject, from, since, 20*limit, take)
	if err != nil {
		return nil, 0, fmt.Errorf("delivery: read attempts: %w", err)
	}
	return out, next, nil
}

// testEventScan bounds the messages read to find a test event's attempt
// (test events of 1/256 of the ids, on one endpoint or all).
const testEventScan = 1000

// readAttempts reads the attempt records on subject from page position
// from on (or, when since is set, from the first message stored at or
// after it), reading at most reads messages, and calls fn for each
// record until it says stop. It returns the position of the record after
// the last one fn took, 0 when the subject holds no more.
func (e *Engine) readAttempts(ctx context.Context, subject string, from uint64, since time.Time, reads int,
	fn func(*hookstreamv1.DeliveryAttempt) bool) (uint64, error) {
	seq, skip := splitAttemptPos(from)
	if !since.IsZero() {
		m, err := eventlog.DirectGetNext(ctx, e.js.Conn(), attemptsStream, subject, since)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
		seq, skip = m.Sequence, 0
	}
	stopped := uint64(0) // where a stop inside a message resumes
	end, err := e.readSubject(ctx, attemptsStream, subject, seq, reads, func(m *jetstream.RawStreamMsg) bool {
		if m.Sequence != seq {
			skip = 0 // the message the position named is gone
		}
		records, _ := decodeAttempts(m) // one that is not ours is skipped
		for i := skip; i < len(records); i++ {
			if !fn(records[i]) {
				if i+1 < len(records) {
					stopped = attemptPos(m.Sequence, i+1)
				}
				return false
			}
		}
		skip = 0
		return true
	})
	if err != nil || stopped != 0 {
		return stopped, err
	}
	return e.moreAttempts(ctx, subject, end), nil
}

// moreAttempts is the page position of the first message on subject at
// or after seq, 0 when there is none.
func (e *Engine) moreAttempts(ctx context.Context, subject string, seq uint64) uint64 {
	if !e.more(ctx, attemptsStream, subject, seq) {
		return 0
	}
	return attemptPos(seq, 0)
}

// LastAttempt returns the newest attempt stored for an endpoint, nil when
// the attempts log holds none (none made yet, or all aged out). It is one
// direct get of the last message on the endpoint's subjects, whatever
// their number (its last record is the newest: group), so a list of
// endpoints costs one request each; on a cluster the answer may lag the
// newest attempt by the replication delay, and it lags the attempt by up
// to attemptLinger anywhere.
func (s *Store) LastAttempt(ctx context.Context, endpoint string) (*hookstreamv1.DeliveryAttempt, error) {
	if !validID(endpoint) {
		return nil, nil
	}
	m, err := eventlog.DirectGetLast(ctx, s.js.Conn(), attemptsStream, attemptsPrefix+"."+endpoint+".*")
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("delivery: last attempt: %w", err)
	}
	records, err := decodeAttempts(m)
	if err != nil || len(records) == 0 {
		return nil, fmt.Errorf("delivery: last attempt: a message of the attempts log holds none (%v)", err)
	}
	return records[len(records)-1], nil
}

// more says whether a stream holds a message on subject at or after from.
func (e *Engine) more(ctx context.Context, stream, subject string, from uint64) bool {
	_, err := e.o.Store.streams[stream].GetMsg(ctx, max(from, 1), jetstream.WithGetMsgSubject(subject))
	return err == nil
}

// storeDeadLetter records j as a dead letter with its round's attempts.
func (e *Engine) storeDeadLetter(ctx context.Context, endpoint string, j *job, last *hookstreamv1.DeliveryAttempt) error {
	dl := &hookstreamv1.DeadLetter{Id: NewID("dl_"), EndpointId: endpoint, EventId: j.id, Cursor: eventlog.Cursor(j.seq), DeadTime: timestamppb.Now()}
	// The round's earlier attempts, as far as the attempts log holds them
	// (the last one comes from memory). Records wait in memory a moment
	// before they are written, so what waits is written first; then one
	// ordered consumer reads the messages of the event's key of the
	// endpoint's attempts from the round's first attempt on, in batches.
	if !j.first.IsZero() {
		// A dead letter never waits on the attempts log: without it, it
		// holds what can be read.
		if err := e.rec.sync(ctx); err != nil {
			e.o.Logger.WarnContext(ctx, "delivery: a dead letter may lack some of its attempts", "endpoint", endpoint, "event_id", j.id, "err", err)
		}
		since := j.first.Add(-time.Second)
		cons, err := e.js.OrderedConsumer(ctx, attemptsStream, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{attemptSubject(endpoint, j.seq, j.id)}, DeliverPolicy: jetstream.DeliverByStartTimePolicy,
			OptStartTime: &since, InactiveThreshold: 30 * time.Second,
		})
		for read := 0; err == nil && read < deadLetterScan; {
			batch, ferr := cons.FetchNoWait(500)
			if ferr != nil {
				break
			}
			n := 0
			for m := range batch.Messages() {
				n++
				records, _ := decodeAttempts(&jetstream.RawStreamMsg{Header: m.Headers(), Data: m.Data()})
				for _, a := range records {
					if a.GetEventId() == j.id && a.GetId() != last.GetId() {
						dl.Attempts = append(dl.Attempts, a)
					}
				}
			}
			if n == 0 {
				break
			}
			read += n
		}
	}
	dl.Attempts = append(dl.Attempts, last)
	data, err := proto.Marshal(dl)
	if err != nil {
		return err
	}
	if _, err = e.js.Publish(ctx, deadPrefix+"."+endpoint, data); err != nil {
		return err
	}
	// On disk before the checkpoint moves past the event.
	return e.o.Store.synced(ctx)
}

// deadLetterScan bounds the attempts read to assemble one dead letter.
const deadLetterScan = 20_000

// DeadLetters lists an endpoint's dead letters oldest first from
// position from; the next position is 0 when none remain.
func (e *Engine) DeadLetters(ctx context.Context, endpoint string, from uint64, limit int) ([]*hookstreamv1.DeadLetter, uint64, error) {
	var out []*hookstreamv1.DeadLetter
	subject := deadPrefix + "." + endpoint
	next, err := e.readSubject(ctx, deadStream, subject, from, limit, func(m *jetstream.RawStreamMsg) bool {
		dl := &hookstreamv1.DeadLetter{}
		if proto.Unmarshal(m.Data, dl) == nil {
			dl.Id = deadLetterID(m.Sequence)
			out = append(out, dl)
		}
		return true
	})
	if err != nil {
		return nil, 0, fmt.Errorf("delivery: read dead letters: %w", err)
	}
	if !e.more(ctx, deadStream, subject, next) {
		next = 0
	}
	return out, next, nil
}

// A dead letter's id is its position in the dead-letter stream.
func deadLetterID(seq uint64) string { return "dl_" + strconv.FormatUint(seq, 10) }

func parseDeadLetterID(id string) (uint64, bool) {
	n, err := strconv.ParseUint(strings.TrimPrefix(id, "dl_"), 10, 64)
	return n, err == nil && strings.HasPrefix(id, "dl_") && n > 0
}

// deadTime is when the dead letter in m was dead-lettered: its dead_time,
// the time ListDeadLetters shows and a redrive's range selects on. The
// message's own time, a few milliseconds later (the attempts are synced
// first), stands in for a letter without one.
func deadTime(m *jetstream.RawStreamMsg) time.Time {
	dl := &hookstreamv1.DeadLetter{}
	if proto.Unmarshal(m.Data, dl) == nil && dl.GetDeadTime() != nil {
		return dl.GetDeadTime().AsTime()
	}
	return m.Time
}

// redriveRequest asks an endpoint's worker to deliver an event again.
type redriveRequest struct {
	Seq      uint64    `json:"seq"`
	EventID  string    `json:"event_id"`
	Received time.Time `json:"received"`
	pos      uint64    // its position in the redrive stream
}

// Redrive hands dead letters of an endpoint back to delivery: one (by
// id), or those dead-lettered in [start, end). It reads from position
// from, at most limit, and returns how many it redrove and where to go on
// (0 when done). A redriven dead letter is removed.
func (e *Engine) Redrive(ctx context.Context, endpoint, id string, start, end time.Time, from uint64, limit int) (int, uint64, error) {
	dead := e.o.Store.streams[deadStream]
	subject := deadPrefix + "." + endpoint
	var picked []*jetstream.RawStreamMsg
	next := uint64(0)
	if id != "" {
		seq, ok := parseDeadLetterID(id)
		if !ok {
			return 0, 0, ErrDeadLetterNotFound
		}
		m, err := dead.GetMsg(ctx, seq)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			return 0, 0, ErrDeadLetterNotFound
		case err != nil:
			return 0, 0, err
		case m.Subject != subject:
			return 0, 0, ErrDeadLetterNotFound
		}
		picked = append(picked, m)
	} else {
		var err error
		next, err = e.readSubject(ctx, deadStream, subject, from, limit, func(m *jetstream.RawStreamMsg) bool {
			if at := deadTime(m); (start.IsZero() || !at.Before(start)) && (end.IsZero() || at.Before(end)) {
				picked = append(picked, m)
			}
			return true
		})
		if err != nil {
			return 0, 0, err
		}
		if !e.more(ctx, deadStream, subject, next) {
			next = 0
		}
	}
	// The requests first, then (once they are on disk) the dead letters'
	// removal: a crash in between leaves a dead letter that was also
	// redriven, never one that is gone without a request.
	var requested []uint64
	var failed error
	for _, m := range picked {
		dl := &hookstreamv1.DeadLetter{}
		if proto.Unmarshal(m.Data, dl) != nil {
			continue
		}
		seq, err := eventlog.ParseCursor(dl.GetCursor())
		if err != nil {
			continue
		}
		req, _ := json.Marshal(redriveRequest{Seq: seq, EventID: dl.GetEventId(), Received: m.Time})
		if _, err := e.js.Publish(ctx, redrivePrefix+"."+endpoint, req); err != nil {
			failed = fmt.Errorf("delivery: redrive: %w", err)
			break
		}
		requested = append(requested, m.Sequence)
	}
	if err := e.o.Store.synced(ctx); err != nil {
		return 0, from, err
	}
	for i, seq := range requested {
		if err := dead.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			requested, failed = requested[:i], fmt.Errorf("delivery: redrive: %w", err)
			break
		}
	}
	e.Wake(endpoint)
	if err := e.o.Store.synced(ctx); err != nil && failed == nil {
		failed = err
	}
	if failed != nil {
		return len(requested), from, failed
	}
	return len(requested), next, nil
}

// storedDeadLetters counts the dead letters of each endpoint now stored.
func (e *Engine) storedDeadLetters(ctx context.Context) (map[string]uint64, error) {
	info, err := e.o.Store.streams[deadStream].Info(ctx, jetstream.WithSubjectFilter(deadPrefix+".>"))
	if err != nil {
		return nil, err
	}
	counts := make(map[string]uint64, len(info.State.Subjects))
	for subject, n := range info.State.Subjects {
		if ep, ok := strings.CutPrefix(subject, deadPrefix+"."); ok {
			counts[ep] = n
		}
	}
	return counts, nil
}

// ErrDeadLetterNotFound says a dead letter id names none of the endpoint.
var ErrDeadLetterNotFound = errors.New("delivery: no such dead letter")

// redrives reads an endpoint's redrive requests after position after.
func (e *Engine) redrives(ctx context.Context, endpoint string, after uint64, limit int) ([]redriveRequest, uint64, error) {
	var out []redriveRequest
	last := after
	_, err := e.readSubject(ctx, redriveStream, redrivePrefix+"."+endpoint, after+1, limit, func(m *jetstream.RawStreamMsg) bool {
		var r redriveRequest
		if json.Unmarshal(m.Data, &r) == nil && r.Seq > 0 {
			r.pos = m.Sequence
			out = append(out, r)
		}
		last = m.Sequence
		return true
	})
	return out, last, err
}
