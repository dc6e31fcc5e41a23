package webhook_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/delivery/webhook"
)

// repoRoot is the directory holding go.mod, found by walking up from the
// package directory go test runs in.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// receiver is test/receivers/standardwebhooks.mjs running under node.
type receiver struct {
	url    string
	lines  chan string
	done   chan struct{} // closed when the process exits
	stderr *lockedBuffer
}

// receiverLine is what the receiver prints for each webhook.
type receiverLine struct {
	ID       string `json:"id"`
	Verified bool   `json:"verified"`
	Secret   int    `json:"secret"`
	Error    string `json:"error"`
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lineWriter hands each complete line written to it to a channel.
type lineWriter struct {
	mu    sync.Mutex
	buf   []byte
	lines chan<- string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.lines <- string(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
}

func startReceiver(t *testing.T, secrets []string) *receiver {
	t.Helper()
	root := repoRoot(t)
	const install = "the Standard Webhooks interop test needs Node.js and the repo's npm packages: run `npm ci` at the repo root (CI does)"
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not found (%v); %s", err, install)
	}
	if _, err := os.Stat(filepath.Join(root, "node_modules", "standardwebhooks", "package.json")); err != nil {
		t.Fatalf("node_modules/standardwebhooks is missing; %s", install)
	}
	r := &receiver{lines: make(chan string, 64), done: make(chan struct{}), stderr: &lockedBuffer{}}
	cmd := exec.Command(node, filepath.Join(root, "test", "receivers", "standardwebhooks.mjs"))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "SECRETS="+strings.Join(secrets, ","), "EXIT_WITH_STDIN=1")
	cmd.Stdout = &lineWriter{lines: r.lines}
	cmd.Stderr = r.stderr
	// Held open until cleanup: if this test process dies, the receiver sees
	// stdin close and exits.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the receiver: %v", err)
	}
	go func() {
		_ = cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-r.done
		stdin.Close()
	})
	var hello struct {
		Port int `json:"port"`
	}
	line := r.next(t, 30*time.Second) // a cold node start can be slow on CI
	if err := json.Unmarshal([]byte(line), &hello); err != nil || hello.Port == 0 {
		t.Fatalf("receiver's first line %q is not {\"port\": N}", line)
	}
	r.url = fmt.Sprintf("http://127.0.0.1:%d", hello.Port)
	return r
}

// next returns the receiver's next line, failing the test if none comes.
func (r *receiver) next(t *testing.T, wait time.Duration) string {
	t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	select {
	case line := <-r.lines:
		return line
	case <-r.done:
		t.Fatalf("the receiver exited; stderr:\n%s", r.stderr)
	case <-deadline.C:
		t.Fatalf("no line from the receiver within %v; stderr:\n%s", wait, r.stderr)
	}
	return ""
}

func (r *receiver) nextWebhook(t *testing.T) receiverLine {
	t.Helper()
	line := r.next(t, 10*time.Second)
	var l receiverLine
	if err := json.Unmarshal([]byte(line), &l); err != nil {
		t.Fatalf("receiver line %q: %v", line, err)
	}
	return l
}

func (r *receiver) setSecrets(t *testing.T, secrets []string) {
	t.Helper()
	body, _ := json.Marshal(map[string][]string{"secrets": secrets})
	resp, err := http.Post(r.url+"/_secrets", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("setting the receiver's secrets: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("setting the receiver's secrets: status %d", resp.StatusCode)
	}
}

// TestStandardWebhooksInterop sends webhooks with Client.Send to a receiver
// that verifies them with the official standardwebhooks npm package: the
// proof that users' receivers accept what we send, including both halves
// of a secret rotation.
func TestStandardWebhooksInterop(t *testing.T) {
	t.Parallel()
	a, b, c := newTestSecret(t), newTestSecret(t), newTestSecret(t)
	recv := startReceiver(t, []string{a})
	client := newClient(t, webhook.Options{AllowNetworks: allowLoopback})

	var bodies []webhook.Request
	for _, format := range []hookstreamv1.EndpointFormat{
		hookstreamv1.EndpointFormat_ENDPOINT_FORMAT_EVENT_JSON,
		hookstreamv1.EndpointFormat_ENDPOINT_FORMAT_CLOUDEVENTS,
	} {
		body, contentType, err := webhook.Encode(sampleEvent(), format) // non-ASCII text included
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, webhook.Request{Body: body, ContentType: contentType})
	}

	tests := []struct {
		name            string
		receiverSecrets []string // nil: keep the previous ones
		keys            []string
		wantSecret      int // index in receiverSecrets, -1: rejected
	}{
		{"one key", nil, []string{a}, 0},
		{"rotation, receiver still on the old secret", []string{a}, []string{b, a}, 0},
		{"rotation, receiver already on the new secret", []string{b}, []string{b, a}, 0},
		{"receiver trying two secrets", []string{c, b}, []string{b, a}, 1},
		{"wrong secret", []string{c}, []string{a}, -1},
		{"wrong secrets, two keys", []string{c}, []string{a, b}, -1},
	}
	n := 0
	for _, tt := range tests {
		if tt.receiverSecrets != nil {
			recv.setSecrets(t, tt.receiverSecrets)
		}
		var keys [][]byte
		for _, s := range tt.keys {
			keys = append(keys, mustParseSecret(t, s))
		}
		for _, body := range bodies {
			n++
			req := body
			req.URL, req.ID, req.Keys = recv.url+"/hooks", fmt.Sprintf("msg_%d", n), keys
			res := client.Send(t.Context(), req)
			got := recv.nextWebhook(t)
			wantStatus := http.StatusNoContent
			if tt.wantSecret < 0 {
				wantStatus = http.StatusUnauthorized
			}
			if res.Status != wantStatus || got.ID != req.ID || got.Verified != (tt.wantSecret >= 0) || got.Secret != tt.wantSecret {
				t.Errorf("%s, %s: status %d (Err %q), receiver saw %+v; want status %d, id %s, secret %d",
					tt.name, req.ContentType, res.Status, res.Err, got, wantStatus, req.ID, tt.wantSecret)
			}
		}
	}

	// The receiver does check the body: a valid signature for another body
	// is refused.
	recv.setSecrets(t, []string{a})
	ts := time.Now()
	h := headersFor("msg_tampered", ts, webhook.Sign([][]byte{mustParseSecret(t, a)}, "msg_tampered", ts, []byte(`{"n":1}`)))
	httpReq, err := http.NewRequestWithContext(t.Context(), http.MethodPost, recv.url+"/hooks", strings.NewReader(`{"n":2}`))
	if err != nil {
		t.Fatal(err)
	}
	httpReq.Header = h
	resp, err := http.DefaultClient.Do(httpReq)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := recv.nextWebhook(t); resp.StatusCode != http.StatusUnauthorized || got.Verified {
		t.Errorf("tampered body: status %d, receiver saw %+v; want 401, not verified", resp.StatusCode, got)
	}
}
