package system

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// TestTooManyEndpoints: CreateEndpoint beyond delivery.max_endpoints is
// refused with RESOURCE_EXHAUSTED, reason TOO_MANY_ENDPOINTS (429 over
// REST), and stores nothing; a deleted endpoint frees its place, once.
func TestTooManyEndpoints(t *testing.T) {
	t.Parallel()
	const limit = 2
	s := startServer(t, testConfig(t, t.TempDir(), deliveryYAML+fmt.Sprintf("  max_endpoints: %d\n", limit)))
	ctx := context.Background()
	eps := s.endpoints()
	// No event is stored, so nothing is ever sent to these URLs.
	url := func(n int) string { return fmt.Sprintf("https://receiver.invalid/hook-%d", n) }
	ids := func() []string {
		t.Helper()
		resp, err := eps.ListEndpoints(ctx, &hookstreamv1.ListEndpointsRequest{PageSize: 100})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, ep := range resp.GetEndpoints() {
			out = append(out, ep.GetId())
		}
		slices.Sort(out)
		return out
	}
	refused := func(what string, n int) {
		t.Helper()
		_, err := eps.CreateEndpoint(ctx, &hookstreamv1.CreateEndpointRequest{Endpoint: &hookstreamv1.Endpoint{Url: url(n)}})
		st := status.Convert(err)
		var info *errdetails.ErrorInfo
		for _, d := range st.Details() {
			if i, ok := d.(*errdetails.ErrorInfo); ok {
				info = i
			}
		}
		if err == nil || st.Code() != codes.ResourceExhausted || info.GetReason() != "TOO_MANY_ENDPOINTS" || info.GetDomain() != "hookstream.dev" {
			t.Fatalf("%s: %v (error info %v), want RESOURCE_EXHAUSTED with reason TOO_MANY_ENDPOINTS", what, err, info)
		}
	}

	var made []string
	for i := range limit {
		made = append(made, createEndpoint(t, s, &hookstreamv1.Endpoint{Url: url(i)}).GetId())
	}
	slices.Sort(made)
	refused("endpoint 3 of at most 2", limit)
	refused("endpoint 3 of at most 2, asked again", limit+1)
	if got := ids(); !slices.Equal(got, made) {
		t.Fatalf("endpoints after refused creates: %v, want only %v", got, made)
	}
	// Nor do refused creates leave delivery progress behind: a client
	// retrying in a loop must not grow the state bucket.
	state, err := s.app.Log().JetStream().KeyValue(ctx, "hookstream_delivery_state")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := state.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var progress []string
	for k := range keys.Keys() {
		progress = append(progress, k)
	}
	slices.Sort(progress)
	if !slices.Equal(progress, made) {
		t.Errorf("delivery progress recorded for %v, want only the endpoints made %v", progress, made)
	}

	// Over REST: 429 with the reason in the JSON error body.
	code, body := httpSend(t, http.MethodPost, s.base+"/v1/endpoints", adminToken, "application/json",
		fmt.Sprintf(`{"url": %q}`, url(9)))
	var r response
	r.code = code
	if err := json.Unmarshal([]byte(body), &r.body); err != nil {
		t.Fatalf("POST /v1/endpoints beyond the limit: %d with non-JSON body %q", code, body)
	}
	if r.code != http.StatusTooManyRequests || r.reason() != "TOO_MANY_ENDPOINTS" {
		t.Fatalf("POST /v1/endpoints beyond the limit: %d %s, want 429 with reason TOO_MANY_ENDPOINTS", code, body)
	}

	// A delete gives one place back: one more endpoint fits, not two.
	if _, err := eps.DeleteEndpoint(ctx, &hookstreamv1.DeleteEndpointRequest{Id: made[0]}); err != nil {
		t.Fatal(err)
	}
	again := createEndpoint(t, s, &hookstreamv1.Endpoint{Url: url(10)}).GetId()
	refused("endpoint 3 of at most 2, after a delete and a create", 11)
	want := []string{made[1], again}
	slices.Sort(want)
	if got := ids(); !slices.Equal(got, want) {
		t.Fatalf("endpoints after the delete and the create: %v, want %v", got, want)
	}
}

// TestTooManyEndpointsAtOnce: creates sent together cannot all pass the
// cap's check before any is stored; exactly delivery.max_endpoints of
// them succeed.
func TestTooManyEndpointsAtOnce(t *testing.T) {
	t.Parallel()
	const limit, tries = 3, 12
	s := startServer(t, testConfig(t, t.TempDir(), deliveryYAML+fmt.Sprintf("  max_endpoints: %d\n", limit)))
	eps := s.endpoints()
	var wg sync.WaitGroup
	codesSeen := make([]codes.Code, tries)
	for i := range tries {
		wg.Go(func() {
			_, err := eps.CreateEndpoint(context.Background(), &hookstreamv1.CreateEndpointRequest{
				Endpoint: &hookstreamv1.Endpoint{Url: fmt.Sprintf("https://receiver.invalid/at-once-%d", i)}})
			codesSeen[i] = status.Code(err)
		})
	}
	wg.Wait()
	made := 0
	for i, c := range codesSeen {
		switch c {
		case codes.OK:
			made++
		case codes.ResourceExhausted:
		default:
			t.Errorf("create %d: %v", i, c)
		}
	}
	resp, err := eps.ListEndpoints(context.Background(), &hookstreamv1.ListEndpointsRequest{PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	if made != limit || len(resp.GetEndpoints()) != limit {
		t.Errorf("%d of %d concurrent creates succeeded and %d endpoints exist, want %d", made, tries, len(resp.GetEndpoints()), limit)
	}
}
