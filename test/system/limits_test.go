package system

import (
	"context"
	"net/http"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// Open streams are capped per API token and per server: beyond a cap a
// stream is refused with RESOURCE_EXHAUSTED and reason TOO_MANY_STREAMS
// (429 over HTTP), and a place comes back once a stream has ended.
func TestStreamLimits(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), "")
	cfg.Subscribe.MaxStreams, cfg.Subscribe.MaxStreamsPerToken = 3, 2
	s := startServer(t, cfg)
	reader := dial(t, s, grpc.WithPerRPCCredentials(bearer(readToken)))
	open := func(conn *grpc.ClientConn) (context.CancelFunc, error) {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		stream, err := hookstreamv1.NewEventServiceClient(conn).Subscribe(ctx, &hookstreamv1.SubscribeRequest{})
		if err == nil {
			// A refused stream ends before its first message (heartbeats
			// come every 200 ms).
			_, err = stream.Recv()
		}
		return cancel, err
	}
	refused := func(err error, scope string) {
		t.Helper()
		st := status.Convert(err)
		if st.Code() != codes.ResourceExhausted {
			t.Fatalf("got %v, want RESOURCE_EXHAUSTED", err)
		}
		for _, d := range st.Details() {
			if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetReason() == "TOO_MANY_STREAMS" && info.GetMetadata()["scope"] == scope {
				return
			}
		}
		t.Fatalf("got %v (%v), want reason TOO_MANY_STREAMS for scope %s", err, st.Details(), scope)
	}
	first, err := open(reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := open(reader); err != nil {
		t.Fatal(err)
	}
	_, err = open(reader)
	refused(err, "token")
	if _, err := open(s.conn); err != nil { // another token
		t.Fatal(err)
	}
	_, err = open(s.conn)
	refused(err, "process")
	if code, body := httpDo(t, http.MethodGet, s.base+"/v1/events:subscribe", adminToken); code != http.StatusTooManyRequests {
		t.Fatalf("HTTP stream beyond the cap: %d %s, want 429", code, body)
	}

	first()
	deadline := time.Now().Add(10 * time.Second)
	for {
		cancel, err := open(reader)
		if err == nil {
			cancel()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no place came back after a stream ended: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
