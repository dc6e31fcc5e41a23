package system

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// connectBearer adds an API token to every Connect call.
func connectBearer(token string) connect.Option {
	return connect.WithInterceptors(connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			if token != "" {
				req.Header().Set("Authorization", "Bearer "+token)
			}
			return next(ctx, req)
		}
	}), streamBearer(token))
}

type streamBearer string

func (b streamBearer) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc { return next }

func (b streamBearer) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		if b != "" {
			conn.RequestHeader().Set("Authorization", "Bearer "+string(b))
		}
		return conn
	}
}

func (b streamBearer) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// TestConnectAndGRPCWeb calls ListEvents (unary) and Subscribe (server
// streaming) on the HTTP port over the Connect protocol (JSON and proto)
// and gRPC-Web: the same services, interceptors and tokens as gRPC.
func TestConnectAndGRPCWeb(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir(), ""))
	resp := s.post("/v1/webhooks/closer?token="+closerToken, fixture(t, "closer", "created"), nil)
	if resp.code != http.StatusOK {
		t.Fatalf("ingest: %d %v", resp.code, resp.body)
	}
	id := resp.body["event_id"].(string)

	for name, opts := range map[string][]connect.ClientOption{
		"connect+json":  {connect.WithProtoJSON()},
		"connect+proto": nil,
		"grpc-web":      {connect.WithGRPCWeb()},
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			list := connect.NewClient[hookstreamv1.ListEventsRequest, hookstreamv1.ListEventsResponse](http.DefaultClient,
				s.base+"/"+hookstreamv1.EventService_ServiceDesc.ServiceName+"/ListEvents", append(opts, connectBearer(readToken))...)
			out, err := list.CallUnary(ctx, connect.NewRequest(&hookstreamv1.ListEventsRequest{}))
			if err != nil {
				t.Fatalf("ListEvents: %v", err)
			}
			if evs := out.Msg.GetEvents(); len(evs) != 1 || evs[0].GetId() != id {
				t.Fatalf("ListEvents = %v, want the one event %s", evs, id)
			}

			anon := connect.NewClient[hookstreamv1.ListEventsRequest, hookstreamv1.ListEventsResponse](http.DefaultClient,
				s.base+"/"+hookstreamv1.EventService_ServiceDesc.ServiceName+"/ListEvents", opts...)
			_, err = anon.CallUnary(ctx, connect.NewRequest(&hookstreamv1.ListEventsRequest{}))
			if code := connect.CodeOf(err); code != connect.CodeUnauthenticated {
				t.Fatalf("ListEvents without a token: %v (code %v), want unauthenticated", err, code)
			}

			sub := connect.NewClient[hookstreamv1.SubscribeRequest, hookstreamv1.SubscribeResponse](http.DefaultClient,
				s.base+"/"+hookstreamv1.EventService_ServiceDesc.ServiceName+"/Subscribe", append(opts, connectBearer(readToken))...)
			stream, err := sub.CallServerStream(ctx, connect.NewRequest(&hookstreamv1.SubscribeRequest{
				Start: &hookstreamv1.SubscribeRequest_Position{Position: hookstreamv1.StartPosition_START_POSITION_BEGINNING},
			}))
			if err != nil {
				t.Fatalf("Subscribe: %v", err)
			}
			defer stream.Close()
			for stream.Receive() {
				if ev := stream.Msg().GetDelivery().GetEvent(); ev != nil {
					if ev.GetId() != id {
						t.Fatalf("Subscribe delivered %s, want %s", ev.GetId(), id)
					}
					return
				}
			}
			t.Fatalf("Subscribe ended before the event: %v", stream.Err())
		})
	}

	// The README's curl: plain JSON, no Connect headers.
	req, _ := http.NewRequest(http.MethodPost, s.base+"/hookstream.v1.EventService/ListEvents", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+readToken)
	raw, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(raw.Body)
	_ = raw.Body.Close()
	if raw.StatusCode != http.StatusOK || !strings.Contains(string(body), id) {
		t.Fatalf("curl-style Connect call: %d %s", raw.StatusCode, body)
	}

	// A stream without a token ends with unauthenticated too.
	sub := connect.NewClient[hookstreamv1.SubscribeRequest, hookstreamv1.SubscribeResponse](http.DefaultClient,
		s.base+"/"+hookstreamv1.EventService_ServiceDesc.ServiceName+"/Subscribe")
	stream, err := sub.CallServerStream(context.Background(), connect.NewRequest(&hookstreamv1.SubscribeRequest{}))
	if err == nil {
		for stream.Receive() {
		}
		err = stream.Err()
		_ = stream.Close()
	}
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != connect.CodeUnauthenticated {
		t.Fatalf("Subscribe without a token: %v, want unauthenticated", err)
	}
}

// TestConnectWebFromNode is the browser path: @connectrpc/connect-web's
// fetch transport with the generated TypeScript clients (compiled here with
// the repo's tsc), from another origin allowed by http.cors, preflight
// included (test/browser/connect-web.mjs).
func TestConnectWebFromNode(t *testing.T) {
	const origin = "http://app.example"
	cfg := testConfig(t, t.TempDir(), "")
	cfg.HTTP.CORS.AllowedOrigins = []string{origin}
	s := startServer(t, cfg)
	resp := s.post("/v1/webhooks/closer?token="+closerToken, fixture(t, "closer", "created"), nil)
	if resp.code != http.StatusOK {
		t.Fatalf("ingest: %d %v", resp.code, resp.body)
	}
	id := resp.body["event_id"].(string)

	// gen/ts compiled to JavaScript, next to a link to node_modules so its
	// imports resolve, as an ES module package.
	root, _ := filepath.Abs("../..")
	out := t.TempDir()
	tsc := nodeScript(t, "typescript", "node_modules/typescript/bin/tsc",
		"-p", filepath.Join(root, "tsconfig.json"), "--noEmit", "false", "--outDir", out, "--rootDir", filepath.Join(root, "gen/ts"))
	tsc.Stdout = os.Stderr
	if err := tsc.Run(); err != nil {
		t.Fatalf("tsc: %v", err)
	}
	if err := os.Symlink(filepath.Join(root, "node_modules"), filepath.Join(out, "node_modules")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "package.json"), []byte(`{"type": "module"}`), 0o600); err != nil {
		t.Fatal(err)
	}

	raw, err := nodeScript(t, "@connectrpc/connect-web", "test/browser/connect-web.mjs", s.base, readToken, origin, out).Output()
	var got struct {
		Error     string
		IDs       []string
		Streamed  string
		Anonymous string
	}
	if jerr := json.Unmarshal(raw, &got); jerr != nil || err != nil || got.Error != "" {
		t.Fatalf("node: %v, said %s", err, raw)
	}
	if len(got.IDs) != 1 || got.IDs[0] != id || got.Streamed != id {
		t.Errorf("ListEvents gave %v and Subscribe %q, want %s", got.IDs, got.Streamed, id)
	}
	if got.Anonymous != "Unauthenticated" {
		t.Errorf("ListEvents without a token: %q, want Unauthenticated", got.Anonymous)
	}

	// An origin not listed gets no CORS headers, so a browser would not
	// read the reply.
	req, _ := http.NewRequest(http.MethodOptions, s.base+"/hookstream.v1.EventService/ListEvents", nil)
	req.Header.Set("Origin", "http://evil.example")
	req.Header.Set("Access-Control-Request-Method", http.MethodPost)
	pre, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = pre.Body.Close()
	if v := pre.Header.Get("Access-Control-Allow-Origin"); v != "" {
		t.Errorf("preflight from an origin not allowed: Access-Control-Allow-Origin %q", v)
	}
}

// TestConnectStreamEndsAtShutdown: a Connect Subscribe stream open when the
// server shuts down ends, and shutdown does not wait for it to time out.
func TestConnectStreamEndsAtShutdown(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir(), ""))
	sub := connect.NewClient[hookstreamv1.SubscribeRequest, hookstreamv1.SubscribeResponse](http.DefaultClient,
		s.base+"/"+hookstreamv1.EventService_ServiceDesc.ServiceName+"/Subscribe", connectBearer(readToken))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stream, err := sub.CallServerStream(ctx, connect.NewRequest(&hookstreamv1.SubscribeRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	if !stream.Receive() { // a heartbeat (200ms in tests): the stream is open
		t.Fatalf("no first message: %v", stream.Err())
	}
	ended := make(chan struct{})
	go func() {
		for stream.Receive() {
		}
		close(ended)
	}()
	start := time.Now()
	s.stop()
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("shutdown took %v with a Connect stream open", d)
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the Connect stream did not end at shutdown")
	}
}
