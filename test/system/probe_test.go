package system

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// rawResponse is an HTTP answer kept byte for byte.
type rawResponse struct {
	code   int
	header http.Header
	body   []byte
}

// send makes one request and keeps the whole answer.
func (s *server) send(method, path string, body []byte, header http.Header) rawResponse {
	s.t.Helper()
	req, err := http.NewRequest(method, s.base+path, bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Header.Del("Date") // the only header allowed to differ
	return rawResponse{code: resp.StatusCode, header: resp.Header, body: b}
}

// With api.unknown_source: unauthorized, a webhook for a source that does
// not exist and one with wrong or missing credentials for a real source get
// the same answer, byte for byte, over HTTP and gRPC, whatever the real
// source's scheme.
func TestHiddenSourcesAnswerAlike(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), "")
	cfg.API.UnknownSource = "unauthorized"
	s := startServer(t, cfg)
	jsonCT := http.Header{"Content-Type": {"application/json"}}
	withAuth := func(v string) http.Header {
		h := jsonCT.Clone()
		h.Set("Authorization", v)
		return h
	}
	body := fixture(t, "clinchpad", "lead_won")
	wrongKey := bytes.Replace(body, []byte(cpHandshake), []byte("not-the-handshake"), 1)
	noKey := bytes.Replace(body, []byte(`"handshake_key"`), []byte(`"other"`), 1)
	cases := []struct {
		name, path string
		body       []byte
		header     http.Header
	}{
		{"unknown source", "/v1/webhooks/no-such-source", wrongKey, jsonCT},
		{"unknown source with Basic", "/v1/webhooks/no-such-source", wrongKey, withAuth(pipedriveAuth("wrong")["Authorization"])},
		{"unknown source with token", "/v1/webhooks/no-such-source?token=wrong-token-0123456789", wrongKey, jsonCT},
		{"unknown source without credentials", "/v1/webhooks/no-such-source", noKey, jsonCT},
		{"basic: wrong password", "/v1/webhooks/pipedrive", wrongKey, withAuth(pipedriveAuth("wrong")["Authorization"])},
		{"basic: missing", "/v1/webhooks/pipedrive", wrongKey, jsonCT},
		{"handshake: wrong key", "/v1/webhooks/clinchpad", wrongKey, jsonCT},
		{"handshake: missing", "/v1/webhooks/clinchpad", noKey, jsonCT},
		{"token: wrong", "/v1/webhooks/closer?token=wrong-token-0123456789", wrongKey, jsonCT},
		{"token: missing", "/v1/webhooks/closer", wrongKey, jsonCT},
	}
	first := s.send(http.MethodPost, cases[0].path, cases[0].body, cases[0].header)
	if first.code != http.StatusUnauthorized {
		t.Fatalf("unknown source: %d %s", first.code, first.body)
	}
	for _, tc := range cases[1:] {
		got := s.send(http.MethodPost, tc.path, tc.body, tc.header)
		if got.code != first.code || !bytes.Equal(got.body, first.body) {
			t.Errorf("%s: %d %s; unknown source: %d %s", tc.name, got.code, got.body, first.code, first.body)
		}
		if !headersEqual(got.header, first.header) {
			t.Errorf("%s: headers %v; unknown source: %v", tc.name, got.header, first.header)
		}
	}

	// gRPC: the same status, message and details.
	ingest := hookstreamv1.NewIngestServiceClient(s.conn)
	call := func(source string, headers, params map[string]string, b []byte) *status.Status {
		_, err := ingest.IngestWebhook(context.Background(), &hookstreamv1.IngestWebhookRequest{
			Source: source, Headers: headers, Params: params,
			Body: &httpbody.HttpBody{ContentType: "application/json", Data: b},
		})
		return status.Convert(err)
	}
	want := call("no-such-source", nil, nil, wrongKey)
	for name, got := range map[string]*status.Status{
		"basic":     call("pipedrive", map[string]string{"authorization": pipedriveAuth("wrong")["Authorization"]}, nil, wrongKey),
		"handshake": call("clinchpad", nil, nil, wrongKey),
		"token":     call("closer", nil, map[string]string{"token": "wrong-token-0123456789"}, wrongKey),
		"missing":   call("clinchpad", nil, nil, noKey),
	} {
		if !proto.Equal(got.Proto(), want.Proto()) {
			t.Errorf("gRPC %s: %v; unknown source: %v", name, got.Proto(), want.Proto())
		}
	}
}

// ...and in the time it takes: reading a large body to find a credential
// in it costs the same whether or not the source exists. This is a
// tolerant statistical check (medians of interleaved runs, a factor of 2,
// three tries), not a benchmark: before the fix a wrong ClinchPad key on a
// ~1 MB body took 4 to 13 times as long as an unknown source.
func TestHiddenSourcesTakeAlike(t *testing.T) {
	if testing.Short() {
		t.Skip("timing check")
	}
	cfg := testConfig(t, t.TempDir(), "")
	cfg.API.UnknownSource = "unauthorized"
	s := startServer(t, cfg)
	// About 1 MB of JSON that takes real work to parse: many small members.
	var b strings.Builder
	b.WriteString(`{"activity": {"_id": "a1", "type": "note:created", "created_at": "2024-06-11T01:00:00Z"}, "lead": {"_id": "l1"}, "filler": [`)
	for i := 0; b.Len() < 1_000_000-64; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"k":%d,"v":"x%d"}`, i, i)
	}
	b.WriteString(`], "handshake_key": "not-the-handshake"}`)
	body := []byte(b.String())
	header := http.Header{"Content-Type": {"application/json"}}
	paths := map[string]string{
		"unknown":         "/v1/webhooks/no-such-source",
		"handshake wrong": "/v1/webhooks/clinchpad",
		"basic missing":   "/v1/webhooks/pipedrive",
		"token missing":   "/v1/webhooks/closer",
	}
	names := []string{"unknown", "handshake wrong", "basic missing", "token missing"}
	median := func(xs []float64) float64 {
		xs = slices.Clone(xs)
		slices.Sort(xs)
		return xs[len(xs)/2]
	}
	// measure returns what tells the cases apart in one series of runs,
	// or nothing. Each round times every case once, in a new order (so
	// periodic costs such as a GC cycle every few requests do not land on
	// the same case), and compares it with the unknown source of the same
	// round, so load that comes and goes on a shared machine cancels out.
	measure := func() []string {
		ratios := map[string][]float64{}
		for round := range 23 {
			order := slices.Clone(names)
			rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			took := map[string]time.Duration{}
			for _, name := range order {
				start := time.Now()
				r := s.send(http.MethodPost, paths[name], body, header)
				took[name] = time.Since(start)
				if r.code != http.StatusUnauthorized {
					t.Fatalf("%s: %d %s", name, r.code, r.body)
				}
			}
			if round < 3 { // warm-up
				continue
			}
			for _, name := range names[1:] {
				ratios[name] = append(ratios[name], float64(took[name])/float64(took["unknown"]))
			}
		}
		var apart []string
		for _, name := range names[1:] {
			m := median(ratios[name])
			t.Logf("%s: median %.2f times as long as an unknown source", name, m)
			if m > 2 || m < 0.5 {
				apart = append(apart, fmt.Sprintf("%s takes %.1f times as long as an unknown source (median)", name, m))
			}
		}
		return apart
	}
	// A real difference shows in every series; a burst of load on a
	// shared machine rarely in three in a row.
	var apart []string
	for range 3 {
		if apart = measure(); len(apart) == 0 {
			return
		}
	}
	t.Errorf("timing tells an unknown source from a real one in 3 series of runs: %s", strings.Join(apart, "; "))
}

func headersEqual(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		if !slices.Equal(va, b[k]) {
			return false
		}
	}
	return true
}
