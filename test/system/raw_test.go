package system

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/internal/app"
	"github.com/hookstream/hookstream/internal/config"
	"github.com/hookstream/hookstream/internal/vendors"
)

// rawSample is a webhook posted as a vendor would, and the body its
// event must keep: the posted bytes, secrets replaced by "[REDACTED]".
type rawSample struct {
	name, path string
	header     map[string]string
	body, want []byte
}

func rawSamples(t *testing.T) []rawSample {
	t.Helper()
	var out []rawSample
	add := func(vendor, name, path string, header map[string]string, edit func([]byte) []byte) {
		if _, ok := vendors.Registry.Lookup(vendor); !ok {
			return
		}
		body := fixture(t, vendor, name)
		out = append(out, rawSample{name: vendor + "/" + name, path: path, header: header, body: body, want: edit(body)})
	}
	same := func(b []byte) []byte { return b }
	redact := func(old string) func([]byte) []byte {
		return func(b []byte) []byte {
			if !bytes.Contains(b, []byte(old)) {
				t.Fatalf("fixture lacks %q", old)
			}
			return bytes.ReplaceAll(b, []byte(old), []byte(`"[REDACTED]"`))
		}
	}
	// The Closer customer's apiKey is a secret member, the ClinchPad
	// handshake_key the source's credential (sent in the body); the
	// Pipedrive password travels in a header, so its body is kept as is.
	add("closer", "created", "/v1/webhooks/closer?token="+closerToken, nil, redact(`"9b7e1d20-44aa-4f0e-8c3b-2a6f5e9d7b11"`))
	add("closer", "closed", "/v1/webhooks/closer?token="+closerToken, nil, redact(`"9b7e1d20-44aa-4f0e-8c3b-2a6f5e9d7b11"`))
	add("pipedrive", "v1_updated_deal", "/v1/webhooks/pipedrive", pipedriveAuth(pdPassword), same)
	add("pipedrive", "v2_change_deal", "/v1/webhooks/pipedrive", pipedriveAuth(pdPassword), same)
	add("clinchpad", "lead_moved", "/v1/webhooks/clinchpad", nil, redact(`"`+cpHandshake+`"`))
	return out
}

// checkRaw says whether ev carries the raw request it should: want's body
// as text with the JSON content type, or none at all when want is nil.
func checkRaw(t *testing.T, where string, ev *hookstreamv1.Event, want []byte) {
	t.Helper()
	raw := ev.GetRaw()
	if want == nil {
		if raw != nil {
			t.Errorf("%s: event %s has raw (%d bytes), want none", where, ev.GetId(), len(raw.GetBodyText())+len(raw.GetBody()))
		}
		return
	}
	switch {
	case raw == nil:
		t.Errorf("%s: event %s has no raw", where, ev.GetId())
	case raw.GetBodyText() != string(want) || len(raw.GetBody()) != 0:
		t.Errorf("%s: event %s raw body\n%s\nwant\n%s", where, ev.GetId(), raw.GetBodyText(), want)
	case raw.GetContentType() != "application/json":
		t.Errorf("%s: event %s raw content type %q", where, ev.GetId(), raw.GetContentType())
	}
	assertNoSecrets(t, where+" raw", raw.GetBodyText()+raw.GetContentType())
}

// Every event keeps its request body, secrets removed exactly as
// quarantine removes them, and every read API sends it only when asked:
// GetEvent, ListEvents, and Subscribe streams fed by the hub and catching
// up; outbound deliveries never carry it.
func TestKeepRaw(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, t.TempDir(), deliveryYAML))
	ctx := context.Background()
	rc := newReceiver(t, nil)
	createEndpoint(t, s, &hookstreamv1.Endpoint{Url: rc.srv.URL + "/hook"})
	now := &hookstreamv1.SubscribeRequest_Position{Position: hookstreamv1.StartPosition_START_POSITION_NOW}
	liveRaw := s.subscribe(&hookstreamv1.SubscribeRequest{Start: now, IncludeRaw: true})
	livePlain := s.subscribe(&hookstreamv1.SubscribeRequest{Start: now})
	for _, sub := range []*subscription{liveRaw, livePlain} {
		if _, err := sub.stream.Header(); err != nil { // positioned at the hub
			t.Fatal(err)
		}
	}

	samples := rawSamples(t)
	want := map[string][]byte{} // event id -> kept body
	var ids []string
	for _, smp := range samples {
		r := s.post(smp.path, smp.body, smp.header)
		if r.code != http.StatusOK || r.body["status"] != "accepted" {
			t.Fatalf("%s: %d %v", smp.name, r.code, r.body)
		}
		id := r.body["event_id"].(string)
		want[id] = smp.want
		ids = append(ids, id)

		got, err := s.events().GetEvent(ctx, &hookstreamv1.GetEventRequest{Id: id, IncludeRaw: true})
		if err != nil {
			t.Fatal(err)
		}
		checkRaw(t, smp.name+" GetEvent include_raw", got.GetEvent(), smp.want)
		got, err = s.events().GetEvent(ctx, &hookstreamv1.GetEventRequest{Id: id})
		if err != nil {
			t.Fatal(err)
		}
		checkRaw(t, smp.name+" GetEvent", got.GetEvent(), nil)
	}
	// Over HTTP, include_raw is a query parameter.
	for q, wantRaw := range map[string]bool{"?include_raw=true": true, "": false} {
		code, body := httpDo(t, http.MethodGet, s.base+"/v1/events/"+ids[0]+q, readToken)
		if code != http.StatusOK || strings.Contains(body, `"bodyText"`) != wantRaw {
			t.Errorf("GET /v1/events/{id}%s: %d, body text present %v, want %v: %s", q, code, !wantRaw, wantRaw, body)
		}
	}

	// From the hub.
	for _, id := range ids {
		checkRaw(t, "hub include_raw", liveRaw.next().GetEvent(), want[id])
		checkRaw(t, "hub", livePlain.next().GetEvent(), nil)
	}
	// Catching up from the beginning.
	begin := &hookstreamv1.SubscribeRequest_Position{Position: hookstreamv1.StartPosition_START_POSITION_BEGINNING}
	pastRaw := s.subscribe(&hookstreamv1.SubscribeRequest{Start: begin, IncludeRaw: true})
	pastPlain := s.subscribe(&hookstreamv1.SubscribeRequest{Start: begin})
	for _, id := range ids {
		ev := pastRaw.next().GetEvent()
		if ev.GetId() != id {
			t.Fatalf("catch-up: event %s, want %s", ev.GetId(), id)
		}
		checkRaw(t, "catch-up include_raw", ev, want[id])
		checkRaw(t, "catch-up", pastPlain.next().GetEvent(), nil)
	}
	// Listing.
	for _, include := range []bool{true, false} {
		resp, err := s.events().ListEvents(ctx, &hookstreamv1.ListEventsRequest{PageSize: 100, IncludeRaw: include})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetEvents()) != len(ids) {
			t.Fatalf("ListEvents: %d events, want %d", len(resp.GetEvents()), len(ids))
		}
		for _, ev := range resp.GetEvents() {
			w := want[ev.GetId()]
			if !include {
				w = nil
			}
			checkRaw(t, fmt.Sprintf("ListEvents include_raw=%v", include), ev, w)
		}
	}
	// Pushed: never.
	rc.waitFor(t, ids, 10*time.Second)
	for _, d := range rc.requests() {
		if bytes.Contains(d.body, []byte(`"raw"`)) || bytes.Contains(d.body, []byte("bodyText")) || bytes.Contains(d.body, []byte("body_text")) {
			t.Errorf("delivery %s carries the raw request: %s", d.id, d.body)
		}
	}
}

// With log.keep_raw: false no event keeps its request.
func TestKeepRawOff(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, t.TempDir(), "  keep_raw: false\n"))
	ctx := context.Background()
	sub := s.subscribe(&hookstreamv1.SubscribeRequest{IncludeRaw: true,
		Start: &hookstreamv1.SubscribeRequest_Position{Position: hookstreamv1.StartPosition_START_POSITION_BEGINNING}})
	for _, smp := range rawSamples(t) {
		r := s.post(smp.path, smp.body, smp.header)
		if r.code != http.StatusOK {
			t.Fatalf("%s: %d %v", smp.name, r.code, r.body)
		}
		got, err := s.events().GetEvent(ctx, &hookstreamv1.GetEventRequest{Id: r.body["event_id"].(string), IncludeRaw: true})
		if err != nil {
			t.Fatal(err)
		}
		checkRaw(t, smp.name+" GetEvent", got.GetEvent(), nil)
		checkRaw(t, smp.name+" Subscribe", sub.next().GetEvent(), nil)
	}
	resp, err := s.events().ListEvents(ctx, &hookstreamv1.ListEventsRequest{IncludeRaw: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range resp.GetEvents() {
		checkRaw(t, "ListEvents", ev, nil)
	}
}

// An event with its raw request holds the body twice, so with
// log.keep_raw a body limit set above half the log's message size (less
// 64 KiB) stops the server at start, and the default one is lowered.
func TestKeepRawBodyLimit(t *testing.T) {
	t.Parallel()
	logger := slog.New(slog.NewTextHandler(&logBuffer{}, nil))
	start := func(extra string, bodyLimit, maxMessage config.ByteSize) (*config.Config, error) {
		cfg := testConfig(t, t.TempDir(), extra)
		if bodyLimit > 0 {
			cfg.HTTP.BodyLimit = bodyLimit
		}
		cfg.Log.MaxMessageSize = maxMessage
		a, err := app.Start(context.Background(), cfg, logger, vendors.Registry)
		if err == nil {
			a.Shutdown(5 * time.Second)
		}
		return cfg, err
	}
	_, err := start("", 3<<20, 4<<20)
	if err == nil || !strings.Contains(err.Error(), "http.body_limit") || !strings.Contains(err.Error(), "keep_raw") {
		t.Errorf("body_limit 3MiB, max message 4MiB, keep_raw: %v, want a config error naming both", err)
	}
	if _, err := start("  keep_raw: false\n", 3<<20, 4<<20); err != nil {
		t.Errorf("body_limit 3MiB, max message 4MiB, no keep_raw: %v", err)
	}
	cfg, err := start("", 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if want := config.ByteSize((1<<20 - 64<<10) / 2); cfg.HTTP.BodyLimit != want {
		t.Errorf("default body limit with a 1MiB log message: %d, want %d", cfg.HTTP.BodyLimit, want)
	}
}
