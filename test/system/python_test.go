package system

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// debianPython is the interpreter the Python client is tested with: Debian's,
// whose python3-grpcio and python3-protobuf scripts/apt-install.sh installs
// (the python3 first on PATH may be another one without them).
const debianPython = "/usr/bin/python3"

var (
	pyOnce sync.Once
	pyBin  string
	pyErr  error
)

// pythonClient returns the python of a virtualenv (over Debian's
// site-packages, for grpcio and protobuf) into which clients/python is
// installed with pip, built once per test run from a copy of
// clients/python and gen/python, so the package is tested as users install
// it. Without grpc in Debian's python the test is skipped, except in CI
// (CI=true), where scripts/apt-install.sh has installed it.
func pythonClient(t *testing.T) string {
	t.Helper()
	if out, err := exec.Command(debianPython, "-c", "import grpc, google.protobuf, ensurepip, setuptools, wheel").CombinedOutput(); err != nil {
		msg := fmt.Sprintf("%s cannot import grpc, protobuf, ensurepip, setuptools or wheel (%v: %s); run scripts/apt-install.sh", debianPython, err, bytes.TrimSpace(out))
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	pyOnce.Do(func() { pyBin, pyErr = buildPythonClient() })
	if pyErr != nil {
		t.Fatalf("installing clients/python: %v", pyErr)
	}
	return pyBin
}

func buildPythonClient() (string, error) {
	dir, err := os.MkdirTemp("", "hookstream-python-")
	if err != nil {
		return "", err
	}
	for _, d := range []string{"clients/python", "gen/python"} {
		if err := copyTree(filepath.Join("../..", d), filepath.Join(dir, "src", d)); err != nil {
			return "", err
		}
	}
	venv := filepath.Join(dir, "venv")
	run := func(name string, args ...string) error {
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), "PIP_DISABLE_PIP_VERSION_CHECK=1", "PIP_NO_CACHE_DIR=1", "PYTHONDONTWRITEBYTECODE=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := run(debianPython, "-m", "venv", "--system-site-packages", venv); err != nil {
		return "", err
	}
	py := filepath.Join(venv, "bin", "python")
	// Offline: no index, no build isolation (setuptools comes from Debian),
	// no dependencies (Debian's grpcio and protobuf are seen through
	// --system-site-packages).
	if err := run(py, "-m", "pip", "install", "--quiet", "--no-index", "--no-build-isolation", "--no-deps",
		filepath.Join(dir, "src", "clients", "python")); err != nil {
		return "", err
	}
	return py, nil
}

// copyTree copies the regular files under src to dst, leaving out what
// Python and pip write (__pycache__, build, *.egg-info).
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			if n := d.Name(); n == "__pycache__" || n == "build" || strings.HasSuffix(n, ".egg-info") {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
}

// The installed package holds every generated module, and they load on
// Debian's runtimes; the client's unit tests (clients/python/tests, against
// a fake EventService) pass.
func TestPythonClientUnit(t *testing.T) {
	py := pythonClient(t)
	// Every module of gen/python/hookstream/v1 imports from the installed
	// package (not from the checkout: the working directory is elsewhere).
	gen, err := filepath.Glob("../../gen/python/hookstream/v1/*.py")
	if err != nil || len(gen) < 10 {
		t.Fatalf("gen/python/hookstream/v1: %v %v", gen, err)
	}
	check := exec.Command(py, "-c", `
import importlib, pkgutil, sys, hookstream.v1, hookstream_client
mods = sorted(m.name for m in pkgutil.iter_modules(hookstream.v1.__path__))
for m in mods:
    importlib.import_module("hookstream.v1." + m)
assert hookstream_client.__file__.startswith(sys.prefix), hookstream_client.__file__
# PEP 561: type checkers read the .pyi stubs only beside a py.typed marker.
import os
for d in [os.path.dirname(hookstream_client.__file__)] + list(hookstream.v1.__path__) + list(hookstream.__path__):
    assert os.path.isfile(os.path.join(d, "py.typed")), "no py.typed in " + d
print(len(mods))
`)
	check.Dir = t.TempDir()
	out, err := check.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != fmt.Sprint(len(gen)) {
		t.Fatalf("importing the installed modules: %v\n%s(want %d modules)", err, out, len(gen))
	}

	root, _ := filepath.Abs("../..")
	cmd := exec.Command(py, "-m", "unittest", "discover", "-s", filepath.Join(root, "clients/python/tests"), "-v")
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	out, err = cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("\nOK")) {
		t.Fatalf("python unit tests: %v\n%s", err, out)
	}
	t.Logf("%s", bytes.TrimSpace(out[bytes.LastIndex(out, []byte("Ran ")):]))
}

// pyEvent is a line of examples/python-subscriber: one event, printed from
// the typed fields of the generated Python classes.
type pyEvent struct {
	Cursor       string            `json:"cursor"`
	ID           string            `json:"id"`
	Source       string            `json:"source"`
	Vendor       string            `json:"vendor"`
	Type         string            `json:"type"`
	VendorType   string            `json:"vendor_type"`
	OccurredAt   string            `json:"occurred_at"`
	Subject      map[string]string `json:"subject"`
	ContactEmail string            `json:"contact_email"`
	Changes      []string          `json:"changes"`
	Payload      map[string]string `json:"payload"`
}

// wantPyEvent is what the example must print for d, from the Go types.
func wantPyEvent(t *testing.T, d *hookstreamv1.EventDelivery) pyEvent {
	t.Helper()
	e := d.GetEvent()
	occurred, err := protojson.Marshal(e.GetOccurredAt())
	if err != nil {
		t.Fatal(err)
	}
	w := pyEvent{
		Cursor: d.GetCursor(), ID: e.GetId(), Source: e.GetSource(), Vendor: e.GetVendor().String(),
		Type: e.GetType(), VendorType: e.GetVendorType(), OccurredAt: strings.Trim(string(occurred), `"`),
		Subject:      map[string]string{"kind": e.GetSubject().GetKind(), "id": e.GetSubject().GetId(), "name": e.GetSubject().GetName()},
		ContactEmail: e.GetContact().GetEmail(),
		Changes:      []string{},
	}
	for _, c := range e.GetChanges() {
		w.Changes = append(w.Changes, c.GetField())
	}
	switch p := e.GetPayload().(type) {
	case *hookstreamv1.Event_Closer:
		w.Payload = map[string]string{"kind": "closer", "event_type": p.Closer.GetEventType(), "customer_id": p.Closer.GetCustomer().GetId()}
	case *hookstreamv1.Event_PipedriveV1:
		m := p.PipedriveV1.GetMeta()
		w.Payload = map[string]string{"kind": "pipedrive_v1", "action": m.GetAction(), "object": m.GetObject(), "id": m.GetId()}
	case *hookstreamv1.Event_PipedriveV2:
		m := p.PipedriveV2.GetMeta()
		w.Payload = map[string]string{"kind": "pipedrive_v2", "action": m.GetAction(), "entity": m.GetEntity(), "entity_id": m.GetEntityId()}
	case *hookstreamv1.Event_Clinchpad:
		w.Payload = map[string]string{"kind": "clinchpad", "activity_type": p.Clinchpad.GetActivity().GetType(),
			"lead_id": p.Clinchpad.GetLead().GetId(), "stage": p.Clinchpad.GetLead().GetStage().GetName()}
	default:
		t.Fatalf("event %s has payload %T", e.GetId(), p)
	}
	return w
}

// TestPythonClient runs examples/python-subscriber against a real server:
// the typed events of every vendor that its CEL filter keeps arrive, and
// only those; killed and started again, it resumes from the cursor it
// stored, with no gap and no duplicate; it reconnects across a server
// restart; it stops cleanly on SIGTERM, and refuses a bad filter or token.
// What it must print comes from a Go subscription to the same server.
func TestPythonClient(t *testing.T) {
	py := pythonClient(t)
	path, cfg := cliConfig(t)
	s := startServer(t, cfg)
	examples := exampleList(t)

	dir := t.TempDir()
	script := filepath.Join(dir, "subscriber.py")
	b, err := os.ReadFile("../../examples/python-subscriber/subscriber.py")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(script, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cursorFile := filepath.Join(dir, "cursor")
	const filter = `!event.type.endsWith(".created")`
	keep := func(e *hookstreamv1.Event) bool { return !strings.HasSuffix(e.GetType(), ".created") }

	example := func(token string, args ...string) *exec.Cmd {
		cmd := exec.Command(py, append([]string{script}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "HOOKSTREAM_ADDR="+cfg.GRPC.Addr, "HOOKSTREAM_TOKEN="+token, "PYTHONDONTWRITEBYTECODE=1")
		return cmd
	}
	start := func() *cliProc {
		return startProc(t, example(readToken, "--from", "beginning", "--cursor-file", cursorFile, "--filter", filter))
	}

	// oracle sees every event, unfiltered, with its cursor.
	oracle := s.subscribe(&hookstreamv1.SubscribeRequest{Start: &hookstreamv1.SubscribeRequest_Position{Position: hookstreamv1.StartPosition_START_POSITION_BEGINNING}})
	var oracleCursor string
	vendorsSeen := map[string]bool{}
	// send posts every built-in example once and returns the deliveries
	// the filter keeps.
	send := func() []*hookstreamv1.EventDelivery {
		t.Helper()
		for _, ex := range examples {
			out, errOut, code := runCLI(t, "send", "--config", path, "--example", ex)
			if code != 0 || !strings.Contains(out, `"duplicate":false`) {
				t.Fatalf("send --example %s: exit %d\n%s%s", ex, code, out, errOut)
			}
		}
		var kept []*hookstreamv1.EventDelivery
		for range examples {
			d := oracle.next()
			oracleCursor = d.GetCursor()
			if keep(d.GetEvent()) {
				kept = append(kept, d)
				vendorsSeen[d.GetEvent().GetVendor().String()] = true
			}
		}
		if len(kept) == 0 || len(kept) == len(examples) {
			t.Fatalf("the filter keeps %d of %d examples; pick one that keeps some", len(kept), len(examples))
		}
		return kept
	}
	// expect reads the example's next lines and compares them with want,
	// then checks nothing more comes and the cursor file holds the last
	// cursor.
	expect := func(p *cliProc, want []*hookstreamv1.EventDelivery) {
		t.Helper()
		for _, d := range want {
			line := p.next(t, 30*time.Second)
			var got pyEvent
			if err := json.Unmarshal([]byte(line), &got); err != nil {
				t.Fatalf("example printed %q: %v", line, err)
			}
			if diff := cmp.Diff(wantPyEvent(t, d), got); diff != "" {
				t.Fatalf("event %s (-from Go +printed by Python):\n%s", d.GetEvent().GetId(), diff)
			}
		}
		select {
		case l, ok := <-p.lines:
			if ok {
				t.Fatalf("unexpected extra line %q", l)
			}
			t.Fatalf("example ended; stderr:\n%s", p.stderr.String())
		case <-time.After(700 * time.Millisecond):
		}
		last := want[len(want)-1].GetCursor()
		deadline := time.Now().Add(5 * time.Second)
		for {
			b, _ := os.ReadFile(cursorFile)
			if strings.TrimSpace(string(b)) == last {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cursor file holds %q, want %q", b, last)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// 1. Events posted before the example starts (it starts at the
	// beginning of the log), and after.
	want := send()
	p := start()
	want = append(want, send()...)
	expect(p, want)
	if len(vendorsSeen) != 3 {
		t.Errorf("vendors among the kept events: %v, want all three", vendorsSeen)
	}

	// 2. Killed outright; what is posted meanwhile comes after a restart,
	// from the stored cursor: nothing twice, nothing missing.
	_ = p.cmd.Process.Kill()
	<-p.done
	want = send()
	p = start()
	expect(p, want)
	if !strings.Contains(p.stderr.String(), "after cursor ") {
		t.Errorf("the restarted example did not resume from its cursor file; stderr:\n%s", p.stderr.String())
	}

	// 3. The server restarts under the running example: it reconnects and
	// goes on after the last event it printed.
	s.stop()
	s = startServer(t, cfg)
	oracle = s.subscribe(&hookstreamv1.SubscribeRequest{Start: &hookstreamv1.SubscribeRequest_AfterCursor{AfterCursor: oracleCursor}})
	want = send()
	expect(p, want)
	if !strings.Contains(p.stderr.String(), "reconnecting") {
		t.Errorf("the example did not report a reconnect; stderr:\n%s", p.stderr.String())
	}

	// 4. SIGTERM stops it cleanly.
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("after SIGTERM: %v; stderr:\n%s", err, p.stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Error("the example did not stop after SIGTERM")
	}

	// 5. A bad filter and a bad token are refused, with exit code 1.
	for _, c := range []struct{ token, filter, want string }{
		{readToken, "event.no_such_field == 1", "INVALID_ARGUMENT"},
		{"not-a-token", "", "UNAUTHENTICATED"},
	} {
		cmd := example(c.token, "--cursor-file", filepath.Join(dir, "other"), "--filter", c.filter)
		var errb bytes.Buffer
		cmd.Stderr = &errb
		err := cmd.Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(errb.String(), c.want) {
			t.Errorf("filter %q, token %q: %v, stderr %q; want exit 1 and %s", c.filter, c.token, err, errb.String(), c.want)
		}
	}

	// 6. A cursor past the log's end is refused at once (not retried),
	// and hookstream_client.error_info reads its reason and last cursor.
	past := filepath.Join(dir, "past")
	if err := os.WriteFile(past, []byte("999999999\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := example(readToken, "--cursor-file", past)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(errb.String(), "OUT_OF_RANGE") ||
			!regexp.MustCompile(`\[CURSOR_PAST_END \{"cursor": "999999999", "last_cursor": "\d+"\}\]`).MatchString(errb.String()) {
			t.Errorf("a cursor past the end: %v, stderr %q; want exit 1, OUT_OF_RANGE and the reason with its metadata", err, errb.String())
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Errorf("a cursor past the end: still running after 20 s (retrying?); stderr %q", errb.String())
	}
	_ = s
}
