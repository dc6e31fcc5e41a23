package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestJSONLogDurations: with --log-format json, every line is JSON and a
// duration reads as the config writes it ("4s"), not in nanoseconds.
func TestJSONLogDurations(t *testing.T) {
	var buf bytes.Buffer
	logger, err := newLogger(&buf, "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	logger.Info("shutting down", "timeout", 4*time.Second, "n", 3)
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("not JSON: %v: %s", err, buf.Bytes())
	}
	if line["timeout"] != "4s" || line["n"] != 3.0 {
		t.Errorf("line %v: want timeout \"4s\" and n 3", line)
	}
}

// TestJSONLogFatalError: with --log-format json, a start that fails (here
// a data dir that is a file) ends with a
// JSON line naming the error, and no line of plain text.
func TestJSONLogFatalError(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := exitCode(run([]string{"serve", "--log-format", "json", "--data-dir", notDir}, &stdout, &stderr), &stderr)
	if code != 1 {
		t.Fatalf("exit code %d, want 1; stderr:\n%s", code, stderr.Bytes())
	}
	lines := bytes.Split(bytes.TrimSpace(stderr.Bytes()), []byte("\n"))
	for _, l := range lines {
		if !json.Valid(l) {
			t.Errorf("not a JSON line: %s", l)
		}
	}
	var last map[string]any
	if err := json.Unmarshal(lines[len(lines)-1], &last); err != nil {
		t.Fatal(err)
	}
	if last["level"] != "ERROR" || last["msg"] != "serve failed" || last["err"] == "" || last["err"] == nil {
		t.Errorf("last line %v: want the error at level ERROR", last)
	}
}
