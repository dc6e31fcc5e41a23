package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/hookstream/hookstream/gateway"
	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service"
	"github.com/hookstream/hookstream/service/delivery"
	"github.com/hookstream/hookstream/service/delivery/webhook"
)

// raceJS is the real JetStream of the log, except that the endpoints
// bucket it opens runs a hook just before each compare-and-set write:
// between the store's read of an endpoint and its write, so a test can
// change the endpoint behind the writer's back at exactly that moment.
type raceJS struct {
	jetstream.JetStream
	beforeUpdate func(ctx context.Context, key string, value []byte)
}

func (j *raceJS) CreateOrUpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := j.JetStream.CreateOrUpdateKeyValue(ctx, cfg)
	if err != nil || cfg.Bucket != "hookstream_endpoints" {
		return kv, err
	}
	return &raceKV{KeyValue: kv, js: j}, nil
}

type raceKV struct {
	jetstream.KeyValue
	js *raceJS
}

func (k *raceKV) Update(ctx context.Context, key string, value []byte, last uint64) (uint64, error) {
	k.js.beforeUpdate(ctx, key, value)
	return k.KeyValue.Update(ctx, key, value, last)
}

// TestEndpointConcurrentChange: two changes of one endpoint race, the
// second landing between the first's read and its write. The first, whose
// compare-and-set fails, reads again and applies its change on top, so
// neither is lost; one that loses the race every time it tries is refused
// with ABORTED, reason CONCURRENT_CHANGE (409 over REST), having changed
// nothing, and succeeds once retried.
func TestEndpointConcurrentChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler)
	s, log := newServicesWith(t)

	// The loser's change carries marker; while races > 0, each write of it
	// to target is preceded by a winning change of target's description,
	// made through the API.
	const marker = "loser-7f3a"
	var (
		target  atomic.Value // endpoint id
		races   atomic.Int64 // races left to make the loser lose
		wins    atomic.Int64 // winning changes made
		client  hookstreamv1.EndpointServiceClient
		hookErr = make(chan error, 100)
	)
	target.Store("")
	js := &raceJS{JetStream: log.JetStream()}
	js.beforeUpdate = func(_ context.Context, key string, value []byte) {
		if key != target.Load().(string) || !bytes.Contains(value, []byte(marker)) || races.Add(-1) < 0 {
			return
		}
		n := wins.Add(1)
		_, err := client.UpdateEndpoint(context.Background(), &hookstreamv1.UpdateEndpointRequest{
			Endpoint:   &hookstreamv1.Endpoint{Id: key, Description: fmt.Sprintf("winner-%d", n)},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"description"}},
		})
		if err != nil {
			hookErr <- fmt.Errorf("winning change %d: %w", n, err)
		}
	}

	store, err := delivery.OpenStore(ctx, js, delivery.StoreOptions{Plain: true, Max: 10, AttemptsRetention: time.Hour, DeadLetterRetention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	engine, err := delivery.Start(ctx, delivery.Options{
		Logger: logger, Log: log, Store: store, Compile: s.Compile, Next: s.NextEvent, Tap: s.TapEvents,
		Client: webhook.NewClient(webhook.Options{}), Metrics: delivery.NewMetrics(prometheus.NewRegistry()),
		Timeout: time.Second, Schedule: []time.Duration{time.Second}, DisableAfter: time.Hour,
		MaxInFlight: 1, MaxPending: 100, SecretOverlap: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(engine.Stop)
	endpoints := s.NewEndpoints(service.EndpointOptions{Store: store, Engine: engine, Overlap: time.Hour})

	// The endpoint service over gRPC on loopback, and the REST gateway in
	// front of it.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hookstreamv1.RegisterEndpointServiceServer(srv, endpoints)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	client = hookstreamv1.NewEndpointServiceClient(conn)
	gw, err := gateway.New(ctx, gateway.Options{Logger: logger, Conn: conn})
	if err != nil {
		t.Fatal(err)
	}
	rest := httptest.NewServer(gw)
	t.Cleanup(rest.Close)

	create := func(t *testing.T, n int) string {
		t.Helper()
		resp, err := client.CreateEndpoint(ctx, &hookstreamv1.CreateEndpointRequest{Endpoint: &hookstreamv1.Endpoint{
			Url: fmt.Sprintf("https://receiver.invalid/hook-%d", n), Description: "original"}})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetEndpoint().GetId()
	}
	loserChange := func(id string) *hookstreamv1.UpdateEndpointRequest {
		return &hookstreamv1.UpdateEndpointRequest{
			Endpoint:   &hookstreamv1.Endpoint{Id: id, Headers: map[string]string{"X-Team": marker}},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"headers"}},
		}
	}
	stored := func(t *testing.T, id string) *hookstreamv1.Endpoint {
		t.Helper()
		resp, err := client.GetEndpoint(ctx, &hookstreamv1.GetEndpointRequest{Id: id})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetEndpoint()
	}
	noHookErrors := func(t *testing.T) {
		t.Helper()
		select {
		case err := <-hookErr:
			t.Fatal(err)
		default:
		}
	}
	// race arms n races against the loser's change of id.
	race := func(id string, n int64) {
		target.Store(id)
		wins.Store(0)
		races.Store(n)
	}

	t.Run("lost once, retried, nothing lost", func(t *testing.T) {
		id := create(t, 1)
		race(id, 1)
		resp, err := client.UpdateEndpoint(ctx, loserChange(id))
		noHookErrors(t)
		if err != nil {
			t.Fatalf("a change that lost one race: %v, want it retried and stored", err)
		}
		if wins.Load() != 1 {
			t.Fatalf("%d winning changes were made, want 1: the race did not happen", wins.Load())
		}
		for what, ep := range map[string]*hookstreamv1.Endpoint{"answer": resp.GetEndpoint(), "stored": stored(t, id)} {
			if ep.GetDescription() != "winner-1" || ep.GetHeaders()["X-Team"] != marker {
				t.Errorf("%s: description %q, headers %v; want both changes: winner-1 and X-Team %s",
					what, ep.GetDescription(), ep.GetHeaders(), marker)
			}
		}
	})

	// refusedEvery makes the loser's change of a new endpoint lose every
	// race, with send, and checks that it changed nothing and that every
	// winning change is kept; then the change, sent again, is stored.
	refusedEvery := func(t *testing.T, n int, send func(id string)) {
		id := create(t, n)
		race(id, 1000)
		send(id)
		noHookErrors(t)
		won := wins.Load()
		if won < 2 {
			t.Fatalf("%d winning changes were made before the refusal, want the store to have retried", won)
		}
		t.Logf("refused after losing %d races", won)
		ep := stored(t, id)
		if ep.GetDescription() != fmt.Sprintf("winner-%d", won) || len(ep.GetHeaders()) != 0 {
			t.Fatalf("after the refusal: description %q, headers %v; want winner-%d (the last winning change) and no headers",
				ep.GetDescription(), ep.GetHeaders(), won)
		}
		// What the client should do: read again and retry the change.
		race(id, 0)
		if _, err := client.UpdateEndpoint(ctx, loserChange(id)); err != nil {
			t.Fatalf("the refused change, sent again: %v", err)
		}
		if ep := stored(t, id); ep.GetDescription() != fmt.Sprintf("winner-%d", won) || ep.GetHeaders()["X-Team"] != marker {
			t.Fatalf("after the retry: description %q, headers %v; want winner-%d and X-Team %s",
				ep.GetDescription(), ep.GetHeaders(), won, marker)
		}
	}

	t.Run("lost every time over gRPC", func(t *testing.T) {
		refusedEvery(t, 2, func(id string) {
			_, err := client.UpdateEndpoint(ctx, loserChange(id))
			st := status.Convert(err)
			info := errorInfo(st)
			if err == nil || st.Code() != codes.Aborted || info.GetReason() != service.ReasonConflict || info.GetDomain() != service.ErrorDomain {
				t.Fatalf("a change that lost every race: %v (error info %v), want ABORTED with reason CONCURRENT_CHANGE", err, info)
			}
		})
	})

	t.Run("lost every time over REST", func(t *testing.T) {
		refusedEvery(t, 3, func(id string) {
			req, _ := http.NewRequest(http.MethodPatch, rest.URL+"/v1/endpoints/"+id+"?update_mask=headers",
				strings.NewReader(`{"headers": {"X-Team": "`+marker+`"}}`))
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			var e struct {
				Error struct {
					Code    int    `json:"code"`
					Status  string `json:"status"`
					Details []struct {
						Type   string `json:"@type"`
						Reason string `json:"reason"`
					} `json:"details"`
				} `json:"error"`
			}
			if err := json.Unmarshal(raw, &e); err != nil {
				t.Fatalf("PATCH that lost every race: %d with a body that is not JSON: %q", resp.StatusCode, raw)
			}
			reason := ""
			for _, d := range e.Error.Details {
				if strings.HasSuffix(d.Type, "google.rpc.ErrorInfo") {
					reason = d.Reason
				}
			}
			if resp.StatusCode != http.StatusConflict || e.Error.Code != http.StatusConflict || e.Error.Status != "ABORTED" || reason != "CONCURRENT_CHANGE" {
				t.Fatalf("PATCH that lost every race: %d %s, want 409, status ABORTED, reason CONCURRENT_CHANGE", resp.StatusCode, raw)
			}
		})
	})
}
