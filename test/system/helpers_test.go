package system

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// logBuffer collects the server's logs; safe for its goroutines and the
// test to use at once.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var (
	natsOnce sync.Once
	natsBin  string
	natsErr  error
)

// natsServerBinary builds nats-server at the version go.mod pins (the same
// module the embedded server comes from), once per test run; set
// NATS_SERVER to use another binary.
func natsServerBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("NATS_SERVER"); bin != "" {
		return bin
	}
	natsOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hookstream-nats-")
		if err != nil {
			natsErr = err
			return
		}
		natsBin = filepath.Join(dir, "nats-server")
		var out bytes.Buffer
		cmd := exec.Command("go", "build", "-o", natsBin, "github.com/nats-io/nats-server/v2")
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			natsErr = err
			natsBin = out.String()
		}
	})
	if natsErr != nil {
		t.Fatalf("building nats-server: %v\n%s", natsErr, natsBin)
	}
	return natsBin
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

var benchSeq atomic.Int64

func seqNext() int64 { return benchSeq.Add(1) }

// httpDo sends a request with an API token and returns status and body.
func httpDo(t *testing.T, method, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
