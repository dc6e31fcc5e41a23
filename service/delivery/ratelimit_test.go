package delivery

import (
	"container/heap"
	"testing"
	"time"

	"golang.org/x/time/rate"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// With a job due and the rate limit spent, the worker sleeps until the
// limiter's next token, not a whole period from now: woken 0.9 s into a
// 1/s period it slept a full second more, and a backlog went out at
// about 0.6/s instead of 1/s.
func TestNextWakeWaitsForTheNextToken(t *testing.T) {
	t.Parallel()
	w := &worker{ep: &Endpoint{Endpoint: &hookstreamv1.Endpoint{State: hookstreamv1.EndpointState_ENDPOINT_STATE_ACTIVE, MaxInFlight: 10}},
		limiter: rate.NewLimiter(1, 1)}
	heap.Push(&w.ready, &job{due: time.Now()})
	if !w.limiter.AllowN(time.Now().Add(-900*time.Millisecond), 1) {
		t.Fatal("the limiter's first token was not there")
	}
	if d := w.nextWake(); d < 50*time.Millisecond || d > 250*time.Millisecond {
		t.Errorf("nextWake = %s, want about 100ms (the next token)", d)
	}
	// With a token at hand, the job due now goes at once.
	w.limiter = rate.NewLimiter(1, 1)
	if d := w.nextWake(); d > 10*time.Millisecond {
		t.Errorf("nextWake with a token = %s, want at once", d)
	}
}
