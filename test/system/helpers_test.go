package system

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// builtBinary is one binary goBinary built (or failed to), once per run.
type builtBinary struct {
	once sync.Once
	path string
	err  error
}

var builtBinaries sync.Map // name -> *builtBinary

// goBinary builds a binary named name with `go build [flags] pkg` (run in
// the repository's root, so flags such as -modfile are relative to it),
// once per test run, and returns its path.
func goBinary(t testing.TB, name string, args ...string) string {
	t.Helper()
	v, _ := builtBinaries.LoadOrStore(name, &builtBinary{})
	b := v.(*builtBinary)
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "hookstream-"+name+"-")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, name)
		cmd := exec.Command("go", append([]string{"build", "-o", b.path}, args...)...)
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatalf("building %s: %v", name, b.err)
	}
	return b.path
}

// natsServerBinary builds nats-server at the version go.mod pins (the same
// module the embedded server comes from), once per test run; set
// NATS_SERVER to use another binary.
func natsServerBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("NATS_SERVER"); bin != "" {
		return bin
	}
	return goBinary(t, "nats-server", "github.com/nats-io/nats-server/v2")
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
	return httpSend(t, method, url, token, "", "")
}

// httpSend is httpDo with a body of contentType (none when empty).
func httpSend(t *testing.T, method, url, token, contentType, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
