package clinchpad_test

import (
	"os"
	"strings"
	"testing"

	"github.com/valyala/fastjson"

	"github.com/hookstream/hookstream/service/normalize"
	"github.com/hookstream/hookstream/service/normalize/clinchpad"
	"github.com/hookstream/hookstream/service/normalize/normalizetest"
)

func newNormalizer(t testing.TB) *clinchpad.Normalizer {
	return clinchpad.New(normalizetest.Validator(t))
}

func handshakeKeys(body []byte) []string {
	v, err := fastjson.ParseBytes(body)
	if err != nil {
		return nil
	}
	return []string{string(v.GetStringBytes(clinchpad.HandshakeKey))}
}

func TestGolden(t *testing.T) {
	t.Parallel()
	normalizetest.Golden(t, newNormalizer(t), "testdata", handshakeKeys)
}

// seedTypes are the 33 activity types of ClinchPad's documentation (seed
// 003); each has a fixture named after it.
var seedTypes = []string{
	"lead:created", "lead:moved", "lead:name_changed", "lead:won", "lead:lost", "lead:assigned", "lead:unassigned",
	"lead:size_changed", "lead:restored", "todo:created", "todo:name_changed", "todo:type_changed",
	"todo:date_changed", "todo:time_changed", "todo:done_changed", "todo:deleted", "note:created", "note:updated",
	"note:deleted", "attachment:created", "attachment:deleted", "record:created", "record:updated",
	"record:deleted", "contact:added", "contact:removed", "product:added", "product:removed", "zone:added",
	"zone:removed", "source:added", "source:removed", "email:received",
}

func TestEverySeedTypeNormalizes(t *testing.T) {
	t.Parallel()
	if len(seedTypes) != 33 {
		t.Fatalf("%d types listed, the documentation has 33", len(seedTypes))
	}
	n := newNormalizer(t)
	for _, typ := range seedTypes {
		body, err := os.ReadFile("testdata/" + strings.ReplaceAll(typ, ":", "_") + ".json")
		if err != nil {
			t.Fatal(err)
		}
		ev, err := normalizetest.Normalize(t, n, body)
		if err != nil {
			t.Errorf("%s: %v", typ, err)
			continue
		}
		if want := strings.ReplaceAll(typ, ":", "."); ev.GetType() != want {
			t.Errorf("%s: type %q, want %q", typ, ev.GetType(), want)
		}
		if ev.GetSubject().GetKind() != "lead" || ev.GetSubject().GetId() == "" {
			t.Errorf("%s: subject %v, want the lead", typ, ev.GetSubject())
		}
	}
}

func TestRetryGetsSameID(t *testing.T) {
	t.Parallel()
	normalizetest.SameDelivery(t, newNormalizer(t), "testdata", "lead_moved", "lead_moved_retry", "lead_created")
}

func TestRedact(t *testing.T) {
	t.Parallel()
	n := newNormalizer(t)
	for _, body := range []string{
		`{"lead": {}, "handshake_key": "s3cr3t"}`,
		`{"lead": {}, "handshake_key" : "s3cr3t" `, // malformed: unterminated object
		`{"handshake_key":"s3\"cr3t","x":1}`,
	} {
		out := string(normalize.ScrubBody([]byte(body), n.SecretMembers(), nil))
		if strings.Contains(out, "s3cr3t") || strings.Contains(out, `cr3t`) {
			t.Errorf("ScrubBody(%s) = %s, secret kept", body, out)
		}
	}
	plain := []byte(`{"lead": {"_id": "1"}}`)
	if got := normalize.ScrubBody(plain, n.SecretMembers(), nil); string(got) != string(plain) {
		t.Errorf("ScrubBody changed a body without secrets: %s", got)
	}
}

func FuzzNormalize(f *testing.F) { normalizetest.FuzzTarget(f, newNormalizer(f), "testdata") }

func BenchmarkNormalizeLeadMoved(b *testing.B) {
	normalizetest.Benchmark(b, newNormalizer(b), "testdata/lead_moved.json")
}
