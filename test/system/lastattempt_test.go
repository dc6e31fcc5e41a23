package system

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// deadLettered waits until an endpoint has n dead letters: its retries
// are over, so its last attempt no longer changes.
func deadLettered(t *testing.T, s *server, endpoint string, n int) {
	t.Helper()
	waitUntil(t, 10*time.Second, "the dead letters of "+endpoint, func() bool {
		resp, err := s.endpoints().ListDeadLetters(context.Background(), &hookstreamv1.ListDeadLettersRequest{EndpointId: endpoint})
		if err != nil {
			t.Fatal(err)
		}
		return len(resp.GetDeadLetters()) == n
	})
}

// TestEndpointLastAttempt: GetEndpoint and ListEndpoints show each
// endpoint's newest attempt from the attempts log: the time and 2xx of a
// delivery, a failing receiver's 500, 0 for a refused connection, and
// nothing for an endpoint never attempted.
func TestEndpointLastAttempt(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, t.TempDir(), deliveryYAML))
	ctx := context.Background()
	ok := newReceiver(t, nil)
	failing := newReceiver(t, func(*http.Request, int) int { return http.StatusInternalServerError })
	eps := map[string]*hookstreamv1.Endpoint{
		"ok":      createEndpoint(t, s, &hookstreamv1.Endpoint{Url: ok.srv.URL}),
		"failing": createEndpoint(t, s, &hookstreamv1.Endpoint{Url: failing.srv.URL}),
		"refused": createEndpoint(t, s, &hookstreamv1.Endpoint{Url: fmt.Sprintf("http://127.0.0.1:%d/hook", freePort(t))}),
		"idle":    createEndpoint(t, s, &hookstreamv1.Endpoint{Url: ok.srv.URL, Filter: `event.type == "never.sent"`}),
	}
	get := func(name string) *hookstreamv1.Endpoint {
		t.Helper()
		resp, err := s.endpoints().GetEndpoint(ctx, &hookstreamv1.GetEndpointRequest{Id: eps[name].GetId()})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetEndpoint()
	}
	if ep := get("ok"); ep.GetLastAttemptTime() != nil || ep.GetLastAttemptStatusCode() != 0 {
		t.Errorf("before any event: last attempt %v, status %d", ep.GetLastAttemptTime(), ep.GetLastAttemptStatusCode())
	}

	before := time.Now()
	ids := postLeadNotes(t, s, "last", []string{"l1"}, 1)
	ok.waitFor(t, ids, 10*time.Second)
	deadLettered(t, s, eps["failing"].GetId(), 1)
	deadLettered(t, s, eps["refused"].GetId(), 1)
	after := time.Now()

	for name, want := range map[string]int32{"ok": http.StatusNoContent, "failing": http.StatusInternalServerError, "refused": 0} {
		var ep *hookstreamv1.Endpoint
		// The attempts log is written without waiting; the newest one is
		// there soon after the receiver answered.
		waitUntil(t, 5*time.Second, name+"'s last attempt", func() bool {
			ep = get(name)
			return ep.GetLastAttemptTime() != nil && ep.GetLastAttemptStatusCode() == want
		})
		if at := ep.GetLastAttemptTime().AsTime(); at.Before(before.Add(-time.Second)) || at.After(after) {
			t.Errorf("%s: last attempt at %v, not between %v and %v", name, at, before, after)
		}
	}
	if ep := get("idle"); ep.GetLastAttemptTime() != nil || ep.GetLastAttemptStatusCode() != 0 {
		t.Errorf("an endpoint never attempted: last attempt %v, status %d", ep.GetLastAttemptTime(), ep.GetLastAttemptStatusCode())
	}

	// ListEndpoints shows the same, on every page.
	byID := map[string]*hookstreamv1.Endpoint{}
	token := ""
	for {
		resp, err := s.endpoints().ListEndpoints(ctx, &hookstreamv1.ListEndpointsRequest{PageSize: 3, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, ep := range resp.GetEndpoints() {
			byID[ep.GetId()] = ep
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	for name, ep := range eps {
		if diff := cmp.Diff(get(name), byID[ep.GetId()], protocmp.Transform()); diff != "" {
			t.Errorf("%s: ListEndpoints differs from GetEndpoint (-get +list):\n%s", name, diff)
		}
	}

	// Output only: a value sent on create is not kept.
	made := createEndpoint(t, s, &hookstreamv1.Endpoint{Url: ok.srv.URL, Filter: `event.type == "never.sent"`,
		LastAttemptTime: eps["ok"].GetCreateTime(), LastAttemptStatusCode: 200})
	if made.GetLastAttemptTime() != nil || made.GetLastAttemptStatusCode() != 0 {
		t.Errorf("create kept the output-only last attempt: %v", made)
	}
}
