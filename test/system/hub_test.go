package system

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// ingestNotes stores n ClinchPad activities of type typ through the HTTP
// handler (no network) and returns their event ids in order.
func ingestNotes(t *testing.T, s *server, from, n int, typ string) []string {
	t.Helper()
	ids, err := postNotes(s, from, n, typ)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// postNotes posts n ClinchPad notes; it may run on any goroutine.
func postNotes(s *server, from, n int, typ string) ([]string, error) {
	h := s.app.Handler()
	ids := make([]string, 0, n)
	for i := from; i < from+n; i++ {
		body := fmt.Sprintf(`{"activity": {"_id": "act-%06d", "created_at": "2024-06-11T01:00:00Z", "type": %q},
			"lead": {"_id": "lead-1"}, "handshake_key": %q}`, i, typ, cpHandshake)
		req := httptest.NewRequest(http.MethodPost, "/v1/webhooks/clinchpad", bytes.NewReader([]byte(body)))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			return ids, fmt.Errorf("ingest %d: %d %s", i, rec.Code, rec.Body)
		}
		ids = append(ids, s.lastEventID(rec.Body.Bytes()))
	}
	return ids, nil
}

func (s *server) lastEventID(body []byte) string {
	i := bytes.Index(body, []byte(`"event_id":"`))
	return string(body[i+12 : i+12+32])
}

// collect reads n deliveries, optionally pausing before each of the first
// slow ones, and returns their ids.
func collect(t *testing.T, sub *subscription, n, slow int, pause time.Duration) []string {
	t.Helper()
	var got []string
	for len(got) < n {
		if len(got) < slow {
			time.Sleep(pause)
		}
		got = append(got, sub.next().GetEvent().GetId())
	}
	return got
}

func sameSequence(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d events, want %d", what, len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s: event %d is %s, want %s (order, gap or duplicate)", what, i, got[i], want[i])
		}
	}
}

// A stream that starts in the past catches up on its own consumer and then
// joins the shared tail; events stored during the switch arrive once, in
// order. A sparse filter also reaches live mode.
func TestSubscribeCatchUpThenLive(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir(), ""))
	want := ingestNotes(t, s, 0, 1500, "note:created")
	rare := ingestNotes(t, s, 1500, 2, "deal:won")

	all := s.subscribe(&hookstreamv1.SubscribeRequest{Start: &hookstreamv1.SubscribeRequest_Position{Position: hookstreamv1.StartPosition_START_POSITION_BEGINNING}})
	sparse := s.subscribe(&hookstreamv1.SubscribeRequest{Filter: `event.type == "deal.won"`,
		Start: &hookstreamv1.SubscribeRequest_Position{Position: hookstreamv1.StartPosition_START_POSITION_BEGINNING}})
	var more []string
	posted := make(chan error, 1)
	go func() {
		var err error
		more, err = postNotes(s, 2000, 1500, "note:created")
		posted <- err
	}()
	got := collect(t, all, 1502+1500, 0, 0)
	if err := <-posted; err != nil {
		t.Fatal(err)
	}
	sameSequence(t, "catch-up then live", got, append(append(want, rare...), more...))

	sparseGot := collect(t, sparse, 2, 0, 0)
	// The sparse stream goes live by asking the log whether it is up to
	// date (nothing it matches is left to read): wait until both streams
	// say they are live, so the next event reaches it through the hub.
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(s.logs.String(), " state=live") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the streams did not both go live; log:\n%s", s.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	later := ingestNotes(t, s, 4000, 1, "deal:won")
	sparseGot = append(sparseGot, sparse.next().GetEvent().GetId())
	sameSequence(t, "sparse filter", sparseGot, append(rare, later...))
	sparse.quiet(300 * time.Millisecond)
}

// A live stream that falls more than its buffer behind is detached,
// catches up on its own, and still sees every event exactly once.
func TestSlowStreamLeavesHubAndCatchesUp(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), "")
	cfg.Subscribe.StreamBuffer = 64 << 10 // a few hundred events
	s := startServer(t, cfg)
	sub := s.subscribe(&hookstreamv1.SubscribeRequest{})
	if _, err := sub.stream.Header(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	// Read nothing until more than the hub's buffer has been stored.
	want := ingestNotes(t, s, 0, 6000, "note:created")
	got := collect(t, sub, 6000, 0, 0)
	sameSequence(t, "slow stream", got, want)
	if !strings.Contains(s.logs.String(), "left the hub") {
		t.Error("the stream was never detached from the hub")
	}
}
