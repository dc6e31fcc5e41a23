package system

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hookstream/hookstream/internal/config"
	"github.com/hookstream/hookstream/internal/vendors"
	"github.com/hookstream/hookstream/service/delivery/webhook"
)

// cliConfig writes a config for the CLI's --config (fixed loopback ports,
// so a restarted server is found at the same address) and loads it.
func cliConfig(t *testing.T) (path string, cfg *config.Config) {
	t.Helper()
	dir := t.TempDir()
	path = filepath.Join(dir, "hookstream.yaml")
	text := fmt.Sprintf(`
http: {addr: "127.0.0.1:%d"}
grpc: {addr: "127.0.0.1:%d"}
subscribe: {heartbeat: 200ms}
shutdown_timeout: 5s
api:
  tokens:
    - {name: test-admin, scope: admin, token: %q}
    - {name: test-reader, scope: read, token: %q}
log:
  data_dir: %q
sources:
  - {name: closer, vendor: closer, auth: {token: %q}}
  - {name: pipedrive, vendor: pipedrive, auth: {basic: {username: pipedrive, password: %q}}}
  - {name: clinchpad, vendor: clinchpad, auth: {handshake_key: %q}}
`, freePort(t), freePort(t), adminToken, readToken, filepath.Join(dir, "data"), closerToken, pdPassword, cpHandshake)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, vendors.Config())
	if err != nil {
		t.Fatal(err)
	}
	return path, cfg
}

// runCLI runs the built binary to the end and returns its output and exit code.
func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(hookstreamBinary(t), args...)
	cmd.Env = append(os.Environ(), "HOOKSTREAM_ADDR=", "HOOKSTREAM_TOKEN=", "HOOKSTREAM_HTTP=", "HOOKSTREAM_TLS=", "HOOKSTREAM_CA=")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// cliProc is a long-running CLI command whose stdout lines are collected.
type cliProc struct {
	cmd    *exec.Cmd
	lines  chan string
	stderr *logBuffer
	done   chan error
}

func startCLI(t *testing.T, args ...string) *cliProc {
	t.Helper()
	cmd := exec.Command(hookstreamBinary(t), args...)
	cmd.Env = append(os.Environ(), "HOOKSTREAM_ADDR=", "HOOKSTREAM_TOKEN=", "HOOKSTREAM_HTTP=", "HOOKSTREAM_TLS=", "HOOKSTREAM_CA=")
	return startProc(t, cmd)
}

// startProc starts cmd and collects its stdout lines (stderr is kept).
func startProc(t *testing.T, cmd *exec.Cmd) *cliProc {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &cliProc{cmd: cmd, lines: make(chan string, 1000), stderr: &logBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return p
}

// next returns the next stdout line, failing after timeout.
func (p *cliProc) next(t *testing.T, timeout time.Duration) string {
	t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			t.Fatalf("command ended; stderr:\n%s", p.stderr.String())
		}
		return l
	case <-time.After(timeout):
		t.Fatalf("no output within %s; stderr:\n%s", timeout, p.stderr.String())
	}
	return ""
}

// interrupt sends SIGINT and checks the command exits 0.
func (p *cliProc) interrupt(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	for range p.lines {
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("after Ctrl-C: %v; stderr:\n%s", err, p.stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Error("command did not stop after Ctrl-C")
	}
}

func exampleList(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("../../cmd/hookstream/examples")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".json"))
	}
	return names
}

func TestCLIVersionAndUsage(t *testing.T) {
	t.Parallel()
	out, _, code := runCLI(t, "version")
	if code != 0 || !strings.Contains(out, runtime.Version()) {
		t.Errorf("version: exit %d, output %q, want %s", code, out, runtime.Version())
	}
	for _, cmd := range []string{"serve", "version", "tail", "send", "listen", "events", "quarantine", "config", "token"} {
		// Help asked for is output, so it can be paged or searched.
		if out, errOut, code := runCLI(t, cmd, "--help"); code != 0 || !strings.Contains(out, "Exit codes") || errOut != "" {
			t.Errorf("%s --help: exit %d, stdout %q, stderr %q", cmd, code, out, errOut)
		}
	}
	if _, _, code := runCLI(t, "no-such-command"); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
	if _, _, code := runCLI(t, "tail", "--no-such-flag"); code != 2 {
		t.Errorf("unknown flag: exit %d, want 2", code)
	}
	out, _, code = runCLI(t, "token", "new", "--scope", "read")
	if code != 0 || !strings.Contains(out, "scope: read, sha256: ") {
		t.Errorf("token new: exit %d, output %q", code, out)
	}
}

// Every example sent with `send` reaches `tail`, twice (sends are made
// unique), and tail resumes across a server restart with no gap and no
// duplicate.
func TestCLISendTailRestart(t *testing.T) {
	path, cfg := cliConfig(t)
	s := startServer(t, cfg)
	examples := exampleList(t)
	if len(examples) < 3 {
		t.Fatalf("examples: %v", examples)
	}
	tail := startCLI(t, "tail", "--config", path, "--json", "--from", "beginning")

	sendAll := func() {
		for _, ex := range examples {
			out, errOut, code := runCLI(t, "send", "--config", path, "--example", ex)
			if code != 0 || !strings.HasPrefix(out, "200 OK") || !strings.Contains(out, `"duplicate":false`) {
				t.Fatalf("send --example %s: exit %d\n%s%s", ex, code, out, errOut)
			}
		}
	}
	seen := map[string]bool{}
	var types []string
	receive := func(n int) {
		for range n {
			var d struct {
				Event  struct{ ID, Source, Type string }
				Cursor string
			}
			line := tail.next(t, 20*time.Second)
			if err := json.Unmarshal([]byte(line), &d); err != nil {
				t.Fatalf("tail line %q: %v", line, err)
			}
			if seen[d.Event.ID] {
				t.Fatalf("duplicate event %s", d.Event.ID)
			}
			seen[d.Event.ID] = true
			types = append(types, d.Event.Source+" "+d.Event.Type)
		}
	}
	sendAll()
	sendAll()
	receive(2 * len(examples))

	s.stop()
	s = startServer(t, cfg)
	sendAll()
	receive(len(examples))
	select {
	case l := <-tail.lines:
		t.Fatalf("unexpected extra line %q", l)
	case <-time.After(500 * time.Millisecond):
	}
	if !strings.Contains(tail.stderr.String(), "reconnecting") {
		t.Errorf("tail did not report a reconnect; stderr:\n%s", tail.stderr.String())
	}
	tail.interrupt(t)
	t.Logf("%d events: %v", len(seen), types[:len(examples)])
	_ = s
}

// tail and listen end with exit 1, and say what to do, where waiting would
// be wrong: a cursor past the log's end (waiting for the log to grow past
// it would skip what comes before), a server never reached, a forward
// URL or secret that cannot work.
func TestCLIStreamEnds(t *testing.T) {
	path, cfg := cliConfig(t)
	startServer(t, cfg)
	if out, errOut, code := runCLI(t, "send", "--config", path, "--example", "pipedrive.deal.change"); code != 0 {
		t.Fatalf("send: exit %d\n%s%s", code, out, errOut)
	}
	for _, cmd := range [][]string{{"tail"}, {"listen", "--forward-to", "http://127.0.0.1:1/hook"}} {
		args := append(slices.Clone(cmd), "--config", path, "--from", "1000")
		_, errOut, code := runCLI(t, args...)
		if code != 1 || !strings.Contains(errOut, "past the log's last position") || !strings.Contains(errOut, "--from 1 ") {
			t.Errorf("%s --from 1000 with 1 event in the log: exit %d, want 1 naming --from 1\n%s", cmd[0], code, errOut)
		}
	}
	start := time.Now()
	_, errOut, code := runCLI(t, "tail", "--addr", "127.0.0.1:1", "--token", readToken, "--connect-timeout", "1s")
	if code != 1 || !strings.Contains(errOut, "cannot reach the server") {
		t.Errorf("tail with no server: exit %d, want 1\n%s", code, errOut)
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("tail with no server took %s to give up after --connect-timeout 1s", took)
	}
	// Its waits between tries end at --connect-timeout, not a backoff past it.
	var waited time.Duration
	for _, m := range regexp.MustCompile(`reconnecting in (\S+)\n`).FindAllStringSubmatch(errOut, -1) {
		d, err := time.ParseDuration(m[1])
		if err != nil {
			t.Fatalf("reconnecting in %q", m[1])
		}
		waited += d
	}
	if waited > time.Second {
		t.Errorf("tail waited %s between tries with --connect-timeout 1s:\n%s", waited, errOut)
	}
	for name, args := range map[string][]string{
		"ftp URL":    {"--forward-to", "ftp://x/y"},
		"bad secret": {"--forward-to", "http://127.0.0.1:1/", "--secret", "whsec_notbase64!!"},
	} {
		if _, errOut, code := runCLI(t, append([]string{"listen", "--config", path}, args...)...); code != 1 {
			t.Errorf("listen with a %s: exit %d, want 1 as its help says\n%s", name, code, errOut)
		}
	}
}

func TestCLIConfigCheck(t *testing.T) {
	t.Parallel()
	path, _ := cliConfig(t)
	out, errOut, code := runCLI(t, "config", "check", path)
	if code != 0 {
		t.Fatalf("good config: exit %d: %s", code, errOut)
	}
	for _, secret := range []string{adminToken, readToken, closerToken, pdPassword, cpHandshake} {
		if strings.Contains(out, secret) {
			t.Errorf("config check printed the secret %q", secret)
		}
	}
	if !strings.Contains(out, "[MASKED]") || !strings.Contains(out, "username: pipedrive") {
		t.Errorf("config check output:\n%s", out)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("sources:\n  - name: a\n    vendor: closer\n    auth: none\n    rate_limt: 5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = runCLI(t, "config", "check", bad)
	if code != 1 || !strings.Contains(errOut, "line 5") || !strings.Contains(errOut, "rate_limt") {
		t.Errorf("bad config: exit %d, stderr %q", code, errOut)
	}
}

// listen forwards events, signed, to a loopback receiver, retrying a
// failed POST.
func TestCLIListen(t *testing.T) {
	path, cfg := cliConfig(t)
	startServer(t, cfg)
	var mu sync.Mutex
	var secret string
	var calls int
	verified := make(chan string, 10)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if err := webhook.Verify(secret, r.Header, body, 5*time.Minute, time.Now()); err != nil {
			t.Errorf("verify: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		verified <- r.Header.Get("webhook-id")
	}))
	defer recv.Close()

	listen := startCLI(t, "listen", "--config", path, "--forward-to", recv.URL+"/hook", "--from", "beginning")
	for secret == "" {
		if l := listen.next(t, 10*time.Second); strings.HasPrefix(l, "Signing secret: ") {
			mu.Lock()
			secret = strings.TrimPrefix(l, "Signing secret: ")
			mu.Unlock()
		}
	}
	out, _, code := runCLI(t, "send", "--config", path, "--example", "pipedrive.deal.change")
	if code != 0 {
		t.Fatalf("send: %s", out)
	}
	select {
	case id := <-verified:
		if !strings.Contains(out, id) {
			t.Errorf("forwarded webhook-id %s, sent event %s", id, out)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("nothing forwarded; stderr:\n%s", listen.stderr.String())
	}
	if !strings.Contains(listen.stderr.String(), "retrying") {
		t.Errorf("the first, failed POST was not retried; stderr:\n%s", listen.stderr.String())
	}
	listen.interrupt(t)
}

// On a terminal tail prints one readable line per event, and Ctrl-C (the
// terminal's ^C) ends it with exit code 0. script(1) provides the pty.
func TestCLITailTerminal(t *testing.T) {
	scriptBin, err := exec.LookPath("script")
	if err != nil {
		t.Skip("script(1) is not installed")
	}
	path, cfg := cliConfig(t)
	startServer(t, cfg)
	if out, _, code := runCLI(t, "send", "--config", path, "--example", "pipedrive.deal.change"); code != 0 {
		t.Fatalf("send: %s", out)
	}
	cmd := exec.Command(scriptBin, "-q", "-e", "-c", "exec "+hookstreamBinary(t)+" tail --config "+path+" --from beginning", "/dev/null")
	cmd.Env = append(os.Environ(), "HOOKSTREAM_ADDR=", "HOOKSTREAM_TOKEN=")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out := &logBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "deal.updated") {
		if time.Now().After(deadline) {
			t.Fatalf("no event line on the terminal:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	line := out.String()
	if strings.Contains(line, "{") || !strings.Contains(line, "pipedrive") || !strings.Contains(line, `deal/4812 "Acme`) {
		t.Errorf("terminal line is not the readable form: %q", line)
	}
	if _, err := stdin.Write([]byte{3}); err != nil { // ^C
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("tail after ^C: %v\n%s", err, out.String())
		}
	case <-time.After(10 * time.Second):
		t.Errorf("tail did not stop on ^C:\n%s", out.String())
	}
}

// The CLI reaches a server that serves TLS: from the config beside it (the
// server's own certificate trusted), or with --tls/--ca/--cert/--key when
// only the address is known; mutual TLS needs the client certificate.
func TestCLITLS(t *testing.T) {
	dir := t.TempDir()
	caFile, certFile, keyFile, clientCert, clientKey := writeCA(t, dir)
	path, _ := cliConfig(t)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tlsYAML := fmt.Sprintf("tls: {cert: %q, key: %q}", certFile, keyFile)
	text := regexp.MustCompile(`(?m)^http: \{(addr: "[^"]+")\}`).ReplaceAllString(string(raw), "http: {$1, "+tlsYAML+"}")
	text = regexp.MustCompile(`(?m)^grpc: \{(addr: "[^"]+")\}`).ReplaceAllString(text,
		fmt.Sprintf("grpc: {$1, tls: {cert: %q, key: %q, client_ca: %q}}", certFile, keyFile, caFile))
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, vendors.Config())
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.HTTP.TLS.Enabled() || cfg.GRPC.TLS.ClientCA == "" {
		t.Fatalf("config edit did not take:\n%s", text)
	}
	startServer(t, cfg)

	// send: HTTPS, trusting the config's own certificate.
	out, errOut, code := runCLI(t, "send", "--config", path, "--example", "closer.closed")
	if code != 0 || !strings.HasPrefix(out, "200 OK") {
		t.Fatalf("send over HTTPS: exit %d\n%s%s", code, out, errOut)
	}
	var resp struct {
		EventID string `json:"event_id"`
	}
	if err := json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[1]), &resp); err != nil || resp.EventID == "" {
		t.Fatalf("send output has no event id (%v):\n%s", err, out)
	}

	// gRPC with client_ca: refused without a client certificate, served with one.
	if out, errOut, code := runCLI(t, "events", "get", "--config", path, resp.EventID); code != 1 {
		t.Errorf("events get without a client certificate: exit %d, want 1\n%s%s", code, out, errOut)
	}
	out, errOut, code = runCLI(t, "events", "get", "--config", path, "--cert", clientCert, "--key", clientKey, resp.EventID)
	if code != 0 || !strings.Contains(out, resp.EventID) {
		t.Fatalf("events get over mutual TLS: exit %d\n%s%s", code, out, errOut)
	}
	// An explicit --config still says how to connect when the address and
	// token are given too (they were read from it only when missing); the
	// flags may follow the id.
	out, errOut, code = runCLI(t, "events", "get", "--config", path, "--addr", cfg.GRPC.Addr, "--token", readToken,
		resp.EventID, "--cert", clientCert, "--key", clientKey, "--json")
	if code != 0 || !strings.Contains(out, resp.EventID) || !json.Valid([]byte(out)) {
		t.Errorf("events get --config with --addr and --token: exit %d\n%s%s", code, out, errOut)
	}

	// Without the config: --ca names the CA; plaintext to a TLS port fails.
	flags := []string{"--addr", cfg.GRPC.Addr, "--token", readToken, "--cert", clientCert, "--key", clientKey}
	out, errOut, code = runCLI(t, append(append([]string{"events", "get"}, flags...), "--ca", caFile, resp.EventID)...)
	if code != 0 || !strings.Contains(out, resp.EventID) {
		t.Errorf("events get --ca: exit %d\n%s%s", code, out, errOut)
	}
	if _, errOut, code := runCLI(t, "events", "get", "--addr", cfg.GRPC.Addr, "--token", readToken, resp.EventID); code != 1 || !strings.Contains(errOut, "add --tls") {
		t.Errorf("plaintext to a TLS server: exit %d, want 1 and a hint to add --tls\n%s", code, errOut)
	}
	if _, errOut, code := runCLI(t, append(append([]string{"events", "get"}, flags...), "--tls", resp.EventID)...); code != 1 || !strings.Contains(errOut, "certificate") {
		t.Errorf("--tls with the system's CAs trusted a private CA: exit %d\n%s", code, errOut)
	}
	if _, errOut, code := runCLI(t, "events", "get", "--config", path, "--cert", clientCert, resp.EventID); code != 2 || !strings.Contains(errOut, "--key") {
		t.Errorf("--cert without --key: exit %d, want 2\n%s", code, errOut)
	}
}

// TestCLITransportHints: TLS to a plaintext server, and the HTTP address
// given as --addr, fail with what to change (plaintext to a TLS server:
// TestCLITLS).
func TestCLITransportHints(t *testing.T) {
	_, cfg := cliConfig(t)
	startServer(t, cfg)
	id := "0123456789abcdef0123456789abcdef"
	if _, errOut, code := runCLI(t, "events", "get", "--tls", "--addr", cfg.GRPC.Addr, "--token", readToken, id); code != 1 ||
		!strings.Contains(errOut, "the server answers in plaintext: leave out --tls") {
		t.Errorf("--tls to a plaintext server: exit %d, want 1 and a hint to leave out --tls\n%s", code, errOut)
	}
	if _, errOut, code := runCLI(t, "tail", "--addr", cfg.HTTP.Addr, "--token", readToken, "--connect-timeout", "1s"); code != 1 ||
		!strings.Contains(errOut, "--addr takes the server's gRPC address") {
		t.Errorf("tail --addr of the HTTP listener: exit %d, want 1 and a hint about grpc.addr\n%s", code, errOut)
	}
	// A call that reached the server keeps its own error.
	if _, errOut, code := runCLI(t, "events", "get", "--addr", cfg.GRPC.Addr, "--token", readToken, id); code != 1 ||
		strings.Contains(errOut, "—") || !strings.Contains(errOut, "NotFound") {
		t.Errorf("events get of an unknown id: exit %d\n%s", code, errOut)
	}
}

// What a new user runs: serve with no config prints the credentials, a read
// token and a `hookstream send` line once the server takes requests, so
// that line works the moment it appears; tail then shows the event.
func TestCLIFirstStart(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:8080", "127.0.0.1:9090"} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = c.Close()
			t.Skipf("%s is in use; the zero-config start needs the default ports", addr)
		}
	}
	dir := filepath.Join(t.TempDir(), "data")
	// A first start that fails (its HTTP port taken) shows no credentials,
	// says where they are, and leaves them to the next start.
	taken, err := net.Listen("tcp", "127.0.0.1:8080")
	if err != nil {
		t.Skipf("cannot take 127.0.0.1:8080 for the failing start: %v", err)
	}
	out, errOut, code := runCLI(t, "serve", "--data-dir", dir)
	_ = taken.Close()
	if code != 1 || strings.Contains(out, "Bearer") || !strings.Contains(errOut, "shown at the next start that succeeds") ||
		!strings.Contains(errOut, "hookstream.generated.yaml") {
		t.Fatalf("a first start on a taken port: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	serve := startCLI(t, "serve", "--data-dir", dir)
	var banner []string
	for !strings.Contains(strings.Join(banner, "\n"), "hookstream send") {
		banner = append(banner, serve.next(t, 30*time.Second))
	}
	// At once and as printed, as a user pasting the line would: the
	// binary is named by the path it was started by (it is not on PATH).
	var sendLine []string
	for _, l := range banner {
		if f := strings.Fields(l); len(f) > 1 && f[1] == "send" {
			sendLine = f
		}
	}
	if len(sendLine) == 0 || sendLine[0] != hookstreamBinary(t) {
		t.Fatalf("the banner's send line does not start with the binary's path %s:\n%s", hookstreamBinary(t), strings.Join(banner, "\n"))
	}
	out, errOut, code = runCLI(t, sendLine[1:]...)
	if code != 0 || !strings.HasPrefix(out, "200 OK") {
		t.Fatalf("send right after the banner: exit %d\n%s%s\nbanner:\n%s", code, out, errOut, strings.Join(banner, "\n"))
	}
	text := strings.Join(append(banner, serve.next(t, 5*time.Second)), "\n")
	for _, want := range []string{"/v1/webhooks/pipedrive", "/v1/webhooks/closer", "/v1/webhooks/clinchpad", "(scope read)", "(scope admin)", hookstreamBinary(t) + " tail --data-dir"} {
		if !strings.Contains(text, want) {
			t.Errorf("banner lacks %q:\n%s", want, text)
		}
	}
	tail := startCLI(t, "tail", "--data-dir", dir, "--from", "beginning", "--json")
	var d struct {
		Event struct{ Source, Type string }
	}
	if err := json.Unmarshal([]byte(tail.next(t, 20*time.Second)), &d); err != nil || d.Event.Source != "pipedrive" || d.Event.Type != "deal.updated" {
		t.Errorf("tail's first line: %+v (%v)", d, err)
	}
	tail.interrupt(t)
	serve.interrupt(t)
}

// The quarantine commands, on a request that will never normalize: list
// shows it, show prints its body with a terminal escape made harmless,
// reprocess keeps it quarantined, discard needs --yes and then removes it.
func TestCLIQuarantine(t *testing.T) {
	t.Parallel()
	path, cfg := cliConfig(t)
	startServer(t, cfg)
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte("not json \x1b]0;pwned\a\x1b[2J"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCLI(t, "send", "--config", path, "--source", "closer", bad)
	if code != 0 || !strings.HasPrefix(out, "202") { // a 2xx: the request is kept
		t.Fatalf("send of a bad body: exit %d, want 0 with 202\n%s%s", code, out, errOut)
	}
	var resp struct {
		QuarantineID string `json:"quarantine_id"`
	}
	if err := json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[1]), &resp); err != nil || resp.QuarantineID == "" {
		t.Fatalf("no quarantine id (%v):\n%s", err, out)
	}
	id := resp.QuarantineID
	if out, errOut, code := runCLI(t, "quarantine", "list", "--config", path); code != 0 || !strings.HasPrefix(out, id+"  ") {
		t.Errorf("quarantine list: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = runCLI(t, "quarantine", "show", id, "--config", path)
	if code != 0 || !strings.Contains(out, `not json \x1b]0;pwned\a\x1b[2J`) || strings.ContainsAny(out, "\x1b\a") {
		t.Errorf("quarantine show: exit %d, want the body with escapes shown, not sent\n%q%s", code, out, errOut)
	}
	if out, errOut, code := runCLI(t, "quarantine", "reprocess", id, "--config", path); code != 1 || !strings.Contains(out, "QUARANTINED") ||
		!strings.Contains(errOut, "still quarantined") {
		t.Errorf("quarantine reprocess: exit %d\n%s%s", code, out, errOut)
	}
	if _, errOut, code := runCLI(t, "quarantine", "discard", id, "--config", path); code != 2 || !strings.Contains(errOut, "--yes") {
		t.Errorf("discard without --yes: exit %d, want 2 naming --yes\n%s", code, errOut)
	}
	if out, errOut, code := runCLI(t, "quarantine", "discard", "--yes", id, "--config", path); code != 0 || out != "discarded "+id+"\n" {
		t.Errorf("discard --yes: exit %d\n%s%s", code, out, errOut)
	}
	if out, _, code := runCLI(t, "quarantine", "list", "--all", "--config", path); code != 0 || strings.Contains(out, id) {
		t.Errorf("discarded request still listed: exit %d\n%s", code, out)
	}
	if _, _, code := runCLI(t, "quarantine", "show", id, "--config", path); code != 1 {
		t.Errorf("show of a discarded request: exit %d, want 1", code)
	}
}

// An example of one vendor sent to another vendor's source would only be
// quarantined: a usage error instead, before anything is sent.
func TestCLISendExampleOfAnotherVendor(t *testing.T) {
	t.Parallel()
	path, _ := cliConfig(t)
	_, errOut, code := runCLI(t, "send", "--config", path, "--source", "pipedrive", "--example", "closer.created")
	if code != 2 || !strings.Contains(errOut, "closer webhook") || !strings.Contains(errOut, "pipedrive source") {
		t.Errorf("send of a closer example to a pipedrive source: exit %d, stderr %q", code, errOut)
	}
}
