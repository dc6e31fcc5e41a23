package main

import (
	"bytes"
	"encoding/json"
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
