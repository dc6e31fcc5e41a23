package system

import (
	"context"
	"net/http"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// TestSubscribeRefusedMetric: hookstream_subscribe_refused_total (no
// labels) counts every stream refused at subscribe.max_streams_per_token
// and at subscribe.max_streams, over gRPC and over HTTP alike, one per
// refusal, and nothing else: admitted streams and streams refused for
// another reason (a bad filter) leave it as it is.
func TestSubscribeRefusedMetric(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, t.TempDir(), "")
	cfg.Subscribe.MaxStreams, cfg.Subscribe.MaxStreamsPerToken = 3, 2
	s := startServer(t, cfg)
	const series = "hookstream_subscribe_refused_total"
	reader := dial(t, s, grpc.WithPerRPCCredentials(bearer(readToken)))

	// open subscribes and waits for the stream's first message (a
	// heartbeat, every 200 ms) or its end: a refused stream ends before it.
	open := func(conn *grpc.ClientConn, req *hookstreamv1.SubscribeRequest) error {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		stream, err := hookstreamv1.NewEventServiceClient(conn).Subscribe(ctx, req)
		if err == nil {
			_, err = stream.Recv()
		}
		return err
	}
	refused := func(what string, err error, scope string) {
		t.Helper()
		st := status.Convert(err)
		for _, d := range st.Details() {
			if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetReason() == "TOO_MANY_STREAMS" && info.GetMetadata()["scope"] == scope {
				if st.Code() == codes.ResourceExhausted {
					return
				}
			}
		}
		t.Fatalf("%s: %v (%v), want RESOURCE_EXHAUSTED TOO_MANY_STREAMS for scope %s", what, err, st.Details(), scope)
	}
	counted := func(what string, want float64) {
		t.Helper()
		// The counter goes up before the refusal is sent, so it is
		// there by the time the client has it.
		if got := metricValue(t, s, series); got != want {
			t.Fatalf("%s: %s = %v, want %v", what, series, got, want)
		}
	}

	counted("before any stream", 0)
	for i := range 2 {
		if err := open(reader, &hookstreamv1.SubscribeRequest{}); err != nil {
			t.Fatalf("reader's stream %d: %v", i+1, err)
		}
	}
	counted("two streams admitted", 0)

	// The reader's token is at its cap (2).
	refused("reader's third stream", open(reader, &hookstreamv1.SubscribeRequest{}), "token")
	counted("refused at the token's cap", 1)
	refused("reader's fourth stream", open(reader, &hookstreamv1.SubscribeRequest{}), "token")
	counted("refused at the token's cap again", 2)

	// A stream refused for its filter is not a stream refused at a cap
	// (and it gives its place back).
	if err := open(s.conn, &hookstreamv1.SubscribeRequest{Filter: "event.type =="}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("stream with a bad filter: %v, want INVALID_ARGUMENT", err)
	}
	counted("refused for its filter", 2)

	// The admin token's first stream fills the process (3); its second is
	// refused at the process's cap.
	if err := open(s.conn, &hookstreamv1.SubscribeRequest{}); err != nil {
		t.Fatalf("admin's stream: %v", err)
	}
	refused("fourth stream of the process", open(s.conn, &hookstreamv1.SubscribeRequest{}), "process")
	counted("refused at the process's cap", 3)

	// Over HTTP (the gateway), the same refusal counts the same.
	if code, body := httpDo(t, http.MethodGet, s.base+"/v1/events:subscribe", adminToken); code != http.StatusTooManyRequests {
		t.Fatalf("HTTP stream beyond the cap: %d %s, want 429", code, body)
	}
	counted("refused over HTTP", 4)
}
