// Package normalizetest runs the golden-file and fuzz checks every vendor
// normalizer shares.
package normalizetest

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"buf.build/go/protovalidate"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/normalize"
)

var update = flag.Bool("update", false, "rewrite the .golden.json files from the current output")

// Source is the source name every golden case is normalized under.
const Source = "golden-source"

// ReceivedAt is the receive time every golden case is normalized with.
var ReceivedAt = time.Date(2026, 1, 2, 3, 4, 5, 600000000, time.UTC)

// result is the golden file format: exactly one of the two is set.
type result struct {
	Event     json.RawMessage `json:"event,omitempty"`
	Rejection json.RawMessage `json:"rejection,omitempty"`
}

// Cases lists the input fixtures in dir: every testdata/<case>.json that is
// not itself a golden file.
func Cases(t testing.TB, dir string) []string {
	t.Helper()
	all, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []string
	for _, f := range all {
		if !strings.HasSuffix(f, ".golden.json") {
			cases = append(cases, f)
		}
	}
	if len(cases) == 0 {
		t.Fatalf("no fixtures in %s", dir)
	}
	return cases
}

// Normalize runs one fixture through n with the golden source and time.
func Normalize(t testing.TB, n normalize.Normalizer, body []byte) (*hookstreamv1.Event, error) {
	t.Helper()
	return n.Normalize(normalize.Input{Source: Source, Body: body, ReceivedAt: ReceivedAt})
}

// Golden normalizes every fixture in dir and compares the outcome (event or
// rejection) with <case>.golden.json; with -update it rewrites the golden
// files instead. secrets returns, for a fixture body, the secret values that
// must not appear anywhere in the output.
func Golden(t *testing.T, n normalize.Normalizer, dir string, secrets func(body []byte) []string) {
	t.Helper()
	for _, file := range Cases(t, dir) {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			got := encode(t, n, body)
			if secrets != nil {
				for _, s := range secrets(body) {
					if s != "" && bytes.Contains(got, []byte(s)) {
						t.Errorf("output contains the secret %q", s)
					}
				}
			}
			goldenPath := strings.TrimSuffix(file, ".json") + ".golden.json"
			if *update {
				if err := os.WriteFile(goldenPath, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(goldenPath)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			compare(t, want, got)
		})
	}
}

// encode renders the outcome of normalizing body as indented golden JSON.
func encode(t *testing.T, n normalize.Normalizer, body []byte) []byte {
	t.Helper()
	ev, err := Normalize(t, n, body)
	var res result
	opts := protojson.MarshalOptions{}
	switch {
	case err != nil:
		rej := normalize.AsRejection(err)
		b, merr := opts.Marshal(rej.Proto())
		if merr != nil {
			t.Fatal(merr)
		}
		res.Rejection = b
	default:
		b, merr := opts.Marshal(ev)
		if merr != nil {
			t.Fatalf("event does not marshal: %v", merr)
		}
		res.Event = b
	}
	raw, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	// protojson varies its whitespace on purpose; re-indent for stable files.
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		t.Fatal(err)
	}
	out.WriteByte('\n')
	return out.Bytes()
}

// compare checks got against want as protos, so formatting differences do
// not matter but every field does.
func compare(t *testing.T, want, got []byte) {
	t.Helper()
	w, g := decodeResult(t, want), decodeResult(t, got)
	if diff := cmp.Diff(w, g, protocmp.Transform()); diff != "" {
		t.Errorf("output differs from golden file (-want +got); rerun with -update if the change is intended:\n%s", diff)
	}
}

func decodeResult(t *testing.T, b []byte) proto.Message {
	t.Helper()
	var res result
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatalf("golden JSON: %v", err)
	}
	var m proto.Message
	var raw json.RawMessage
	switch {
	case res.Event != nil:
		m, raw = &hookstreamv1.Event{}, res.Event
	case res.Rejection != nil:
		m, raw = &hookstreamv1.Rejection{}, res.Rejection
	default:
		t.Fatal("golden JSON has neither event nor rejection")
	}
	if err := protojson.Unmarshal(raw, m); err != nil {
		t.Fatalf("golden JSON: %v", err)
	}
	return m
}

// Fuzz checks the properties every normalizer must keep on any input: no
// panic; an event it returns is valid, marshals, and gets the same id when
// normalized again; a rejection names a code; ScrubBody never panics and
// keeps the body when there is nothing to redact.
func Fuzz(t *testing.T, n normalize.Normalizer, validate func(proto.Message) error, body []byte) {
	ev, err := Normalize(t, n, body)
	_ = normalize.ScrubBody(body, n.SecretMembers(), nil)
	if err != nil {
		if rej := normalize.AsRejection(err); rej.Code == hookstreamv1.RejectionCode_REJECTION_CODE_UNSPECIFIED {
			t.Fatalf("rejection without a code: %v", err)
		}
		return
	}
	if err := validate(ev); err != nil {
		t.Fatalf("returned event is invalid: %v", err)
	}
	if _, err := proto.Marshal(ev); err != nil {
		t.Fatalf("event does not marshal: %v", err)
	}
	if _, err := protojson.Marshal(ev); err != nil {
		t.Fatalf("event does not marshal to JSON: %v", err)
	}
	again, err := Normalize(t, n, body)
	if err != nil || again.GetId() != ev.GetId() {
		t.Fatalf("second run differs: id %q vs %q, err %v", ev.GetId(), again.GetId(), err)
	}
}

// AddSeeds adds every fixture in dir to the fuzz corpus.
func AddSeeds(f *testing.F, dir string) {
	for _, file := range Cases(f, dir) {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// Validator returns the validator the normalizers use, failing t on error.
func Validator(t testing.TB) protovalidate.Validator {
	t.Helper()
	v, err := normalize.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// FuzzTarget seeds f with the fixtures in dir and checks Fuzz's properties
// on every input.
func FuzzTarget(f *testing.F, n normalize.Normalizer, dir string) {
	AddSeeds(f, dir)
	v := Validator(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		Fuzz(t, n, func(m proto.Message) error { return v.Validate(m) }, body)
	})
}

// Benchmark normalizes one fixture file per iteration.
func Benchmark(b *testing.B, n normalize.Normalizer, file string) {
	body, err := os.ReadFile(file)
	if err != nil {
		b.Fatal(err)
	}
	in := normalize.Input{Source: "bench", Body: body, ReceivedAt: ReceivedAt}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := n.Normalize(in); err != nil {
			b.Fatal(err)
		}
	}
}

// ID normalizes dir/<name>.json and returns the event id.
func ID(t testing.TB, n normalize.Normalizer, dir, name string) string {
	t.Helper()
	body, err := os.ReadFile(filepath.Join(dir, name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := Normalize(t, n, body)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return ev.GetId()
}

// SameDelivery checks that retry (a vendor's redelivery of original) gets
// original's id, and other (a different event) does not.
func SameDelivery(t testing.TB, n normalize.Normalizer, dir, original, retry, other string) {
	t.Helper()
	a, b, c := ID(t, n, dir, original), ID(t, n, dir, retry), ID(t, n, dir, other)
	if a != b {
		t.Errorf("%s, a redelivery of %s, got a new id: %s vs %s", retry, original, b, a)
	}
	if a == c {
		t.Errorf("%s and %s share id %s", original, other, a)
	}
}
