package system

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The Go example in examples/go-subscriber (shown in the README) prints
// matching events and, restarted, resumes after its stored cursor.
func TestGoSubscriberExample(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "go-subscriber")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/hookstream/hookstream/examples/go-subscriber").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	path, cfg := cliConfig(t)
	startServer(t, cfg)
	send := func() string {
		t.Helper()
		out, errOut, code := runCLI(t, "send", "--config", path, "--example", "pipedrive.deal.change")
		var r struct {
			EventID string `json:"event_id"`
		}
		if code != 0 || json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[1]), &r) != nil {
			t.Fatalf("send: exit %d\n%s%s", code, out, errOut)
		}
		return r.EventID
	}
	dir := t.TempDir()
	run := func() (lines chan string, stop func()) {
		cmd := exec.Command(bin)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "HOOKSTREAM_ADDR="+cfg.GRPC.Addr, "HOOKSTREAM_TOKEN="+readToken)
		out, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines = make(chan string, 100)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		return lines, func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }
	}
	next := func(lines chan string) string {
		t.Helper()
		select {
		case l := <-lines:
			return l
		case <-time.After(20 * time.Second):
			t.Fatal("the example printed nothing")
		}
		return ""
	}
	first := send()
	lines, stop := run()
	if l := next(lines); !strings.Contains(l, "deal.updated deal 4812 "+first) {
		t.Errorf("first line %q, want deal.updated of %s", l, first)
	}
	stop()
	second := send()
	lines, stop = run()
	defer stop()
	if l := next(lines); !strings.HasSuffix(l, second) {
		t.Errorf("after a restart the example printed %q, want only the new event %s", l, second)
	}
}
