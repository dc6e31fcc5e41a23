package delivery

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// TestFilterFailureIsADeadLetter: an event the endpoint's filter fails on
// at run time is not sent and not skipped unseen: it is a dead letter at
// once, whose record (attempt 0, no request) says why; the events around
// it are delivered.
func TestFilterFailureIsADeadLetter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log, store := openTestLog(t)
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("webhook-id"))
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	e := startLoopbackEngine(t, log, store, func(*Options) {})
	ep := &Endpoint{Endpoint: &hookstreamv1.Endpoint{Id: "ep_filterfail", Url: srv.URL + "/hook",
		// int() of a type that is not a number fails at run time.
		Filter: `event.type == "lead.moved" || int(event.type) > 0`,
		State:  hookstreamv1.EndpointState_ENDPOINT_STATE_ACTIVE, Start: &hookstreamv1.Endpoint_StartPosition{StartPosition: hookstreamv1.StartPosition_START_POSITION_BEGINNING}},
		Secrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, Expires: []time.Time{{}}}
	if err := e.Init(ctx, ep.Endpoint); err != nil {
		t.Fatal(err)
	}
	if err := store.Create(ctx, ep); err != nil {
		t.Fatal(err)
	}
	ids := []string{"a0000000000000000000000000000001", "b0000000000000000000000000000002", "c0000000000000000000000000000003"}
	for i, typ := range []string{"lead.moved", "lead.created", "lead.moved"} {
		if _, err := log.Append(ctx, &hookstreamv1.Event{Id: ids[i], Source: "test", Type: typ, ReceivedAt: timestamppb.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	var dead []*hookstreamv1.DeadLetter
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var err error
		if dead, _, err = e.DeadLetters(ctx, ep.Id, 0, 10); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if len(dead) > 0 && n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 15 s: %d dead letters, %d deliveries; want 1 and 2", len(dead), n)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if slices.Sort(got); !slices.Equal(got, []string{ids[0], ids[2]}) {
		t.Errorf("delivered %v; want the two events the filter matched", got)
	}
	if len(dead) != 1 || dead[0].GetEventId() != ids[1] || len(dead[0].GetAttempts()) != 1 {
		t.Fatalf("dead letters %v; want the event the filter failed on, with one record", dead)
	}
	a := dead[0].GetAttempts()[0]
	if a.GetAttempt() != 0 || a.GetStatusCode() != 0 || a.GetOutcome() != hookstreamv1.AttemptOutcome_ATTEMPT_OUTCOME_DEAD_LETTERED ||
		!strings.Contains(a.GetError(), "filter failed on this event") {
		t.Errorf("its record %v; want attempt 0, no status, dead-lettered, saying the filter failed", a)
	}
}
