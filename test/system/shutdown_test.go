package system

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// Open Subscribe streams (gRPC and HTTP) must not hold up shutdown: they
// end with UNAVAILABLE and the server stops within its drain timeout.
func TestShutdownWithOpenStreams(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir(), ""))
	sub := s.subscribe(&hookstreamv1.SubscribeRequest{})
	if _, err := sub.stream.Header(); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, s.base+"/v1/events:subscribe", nil)
	req.Header.Set("Authorization", "Bearer "+readToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// Wait for the HTTP stream to be live: its first heartbeat.
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.Contains(line, "heartbeat") {
		t.Fatalf("first HTTP stream line %q, %v", line, err)
	}

	const drain = 5 * time.Second
	done := make(chan struct{})
	start := time.Now()
	go func() { s.app.Shutdown(drain); close(done) }()
	select {
	case <-done:
	case <-time.After(drain + 5*time.Second):
		t.Fatal("shutdown did not return within its drain timeout")
	}
	s.app = nil
	t.Logf("shutdown with two open streams took %s", time.Since(start))

	for {
		_, err := sub.stream.Recv()
		if err == nil {
			continue
		}
		if c := status.Code(err); c != codes.Unavailable {
			t.Errorf("gRPC stream ended with %v, want UNAVAILABLE", err)
		}
		break
	}
}

func TestHTTPLimits(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), "")
	cfg.HTTP.BodyLimit = 2048
	cfg.HTTP.MaxHeaderBytes = 4096
	cfg.HTTP.ReadHeaderTimeout = 300 * time.Millisecond
	cfg.HTTP.ReadTimeout = 500 * time.Millisecond
	s := startServer(t, cfg)
	big := make([]byte, 4096)
	for i := range big {
		big[i] = 'a'
	}
	if resp := s.post("/v1/webhooks/closer?token="+closerToken, big, nil); resp.code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %d %v", resp.code, resp.body)
	}

	// API bodies are capped before they are read or decoded, token or not
	// (2 x max(body_limit, 64 KiB) + 64 KiB: 192 KiB here): 413, whether
	// the length is said or a chunked body passes the cap.
	huge := `{"description": "` + strings.Repeat("a", 300<<10) + `"}`
	for _, path := range []string{"/v1/endpoints", "/hookstream.v1.EventService/ListEvents", "/api/v1/webhooks"} {
		for _, chunked := range []bool{false, true} {
			var body io.Reader = strings.NewReader(huge)
			if chunked {
				body = io.MultiReader(strings.NewReader(huge)) // no length: sent chunked
			}
			req, _ := http.NewRequest(http.MethodPost, s.base+path, body)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			want := "BODY_TOO_LARGE"
			if strings.HasPrefix(path, "/api/v1/") {
				want = `"errorCode":413` // the Pipedrive-compatible API answers in Pipedrive's shape
			}
			if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(got), want) {
				t.Errorf("POST %s, 300 KiB (chunked: %v): %d %s; want 413 %s", path, chunked, resp.StatusCode, got, want)
			}
		}
	}

	// Headers over the limit get 431: from the limit on (net/http by
	// itself reads several KiB past it), and far past it.
	for size, want := range map[int]int{3000: http.StatusAccepted, 4500: http.StatusRequestHeaderFieldsTooLarge, 13000: http.StatusRequestHeaderFieldsTooLarge} {
		req, _ := http.NewRequest(http.MethodPost, s.base+"/v1/webhooks/closer?token="+closerToken, strings.NewReader("{}"))
		req.Header.Set("X-Filler", strings.Repeat("v", size))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("a %d-byte header with http.max_header_bytes 4096: %d, want %d", size, resp.StatusCode, want)
		}
	}

	// A client that never finishes its headers is cut off.
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("POST /v1/webhooks/closer HTTP/1.1\r\nHost: x\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 512)
	_, err = conn.Read(buf)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Error("slow-header client was not cut off by the read-header timeout")
	}

	// A client that sends its headers and then trickles its body is
	// answered 408 when the read timeout passes, and disconnected.
	slow, err := net.Dial("tcp", strings.TrimPrefix(s.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if _, err := slow.Write([]byte("POST /v1/webhooks/closer?token=" + closerToken + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")); err != nil {
		t.Fatal(err)
	}
	_ = slow.SetReadDeadline(time.Now().Add(10 * time.Second))
	answer, err := io.ReadAll(slow)
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("slow-body client was not cut off by the read timeout")
	}
	if !strings.HasPrefix(string(answer), "HTTP/1.1 408") || !strings.Contains(string(answer), "BODY_TIMEOUT") {
		t.Errorf("slow-body client got %q, want 408 BODY_TIMEOUT", answer)
	}
}
