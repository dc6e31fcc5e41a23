package system

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// inspectorPost is one webhook test/browser/inspector.mjs posts.
type inspectorPost struct {
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

// TestInspector drives the web inspector (/ui/) in headless Chromium
// (Debian's chromium, through the pinned playwright-core) against a real
// server: login, live events of all three vendors, CEL filters, event
// detail, quarantine reprocess and discard, sources, deliveries, a read token's view,
// a phone's viewport, keyboard navigation and axe-core checks. The
// screenshots stay in $ARTIFACTS_DIR (default test/browser/artifacts,
// ignored by git); test/browser/inspector.mjs says what each check is.
func TestInspector(t *testing.T) {
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("%s is missing: scripts/apt-install.sh installs Debian's chromium", chromium)
	}
	s := startServer(t, testConfig(t, t.TempDir(), deliveryYAML))

	// Two endpoints: one whose receiver takes Closer events, one whose
	// receiver fails, so Pipedrive events become dead letters at once.
	ok := newReceiver(t, func(*http.Request, int) int { return http.StatusOK })
	failing := newReceiver(t, func(*http.Request, int) int { return http.StatusServiceUnavailable })
	createEndpoint(t, s, &hookstreamv1.Endpoint{Url: ok.srv.URL + "/hooks", Description: "CRM sync (Closer conversations)",
		Filter: `event.vendor == hookstream.v1.Vendor.VENDOR_CLOSER`})
	createEndpoint(t, s, &hookstreamv1.Endpoint{Url: failing.srv.URL + "/hooks", Description: "Deal mirror (failing)",
		Filter: `event.vendor == hookstream.v1.Vendor.VENDOR_PIPEDRIVE`})

	// A busy endpoint: more attempts than a page of them holds, the newest
	// failing (test events, so the events list stays as it is).
	const busyOK = 1100
	busy := newReceiver(t, func(_ *http.Request, n int) int {
		if n <= busyOK {
			return http.StatusOK
		}
		return http.StatusInternalServerError
	})
	bep := createEndpoint(t, s, &hookstreamv1.Endpoint{Url: busy.srv.URL + "/hooks", Description: "Busy (newest attempts failing)",
		Filter: `event.type == "never.sent"`})
	for range busyOK + 2 {
		if _, err := s.endpoints().SendTestEvent(context.Background(), &hookstreamv1.SendTestEventRequest{Id: bep.GetId()}); err != nil {
			t.Fatal(err)
		}
	}

	closer := func(name string) inspectorPost {
		return inspectorPost{Path: "/v1/webhooks/closer?token=" + closerToken, Body: string(fixture(t, "closer", name))}
	}
	pipedrive := func(name string) inspectorPost {
		return inspectorPost{Path: "/v1/webhooks/pipedrive", Headers: pipedriveAuth(pdPassword), Body: string(fixture(t, "pipedrive", name))}
	}
	hooks := map[string]any{
		// In this order: the script opens the second (a deal change).
		"live": []inspectorPost{closer("created"), pipedrive("v2_change_deal"),
			{Path: "/v1/webhooks/clinchpad", Body: string(fixture(t, "clinchpad", "lead_moved"))}},
		"more": closer("closed"),
		"bad":  pipedrive("v2_missing_meta_id"),
		"bad2": pipedrive("v2_bad_timestamp"),
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "webhooks.json")
	raw, err := json.Marshal(hooks)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	secrets, _ := json.Marshal([]string{pdPassword, closerToken, cpHandshake, adminToken})

	artifacts := os.Getenv("ARTIFACTS_DIR")
	if artifacts == "" {
		artifacts, _ = filepath.Abs("../browser/artifacts")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := nodeScript(t, "playwright-core", "test/browser/inspector.mjs")
	cmd = exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
	cmd.Env = append(os.Environ(),
		"HOOKSTREAM_URL="+s.base, "ADMIN_TOKEN="+adminToken, "READ_TOKEN="+readToken,
		"WEBHOOKS_FILE="+file, "SECRETS="+string(secrets), "ARTIFACTS_DIR="+artifacts, "CHROMIUM="+chromium)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("test/browser/inspector.mjs: %v\n%s", err, out)
	}
	t.Logf("test/browser/inspector.mjs:\n%s", out)
	t.Logf("screenshots in %s", artifacts)
}
