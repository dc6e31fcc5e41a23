package main

import (
	"bytes"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// syncWriter serializes writes from the server's goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
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

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
