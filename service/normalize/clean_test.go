package normalize_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/valyala/fastjson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/normalize"
	"github.com/hookstream/hookstream/service/normalize/clinchpad"
	"github.com/hookstream/hookstream/service/normalize/closer"
	"github.com/hookstream/hookstream/service/normalize/normalizetest"
	"github.com/hookstream/hookstream/service/normalize/pipedrive"
)

func TestNothingToScrub(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		secrets  []string
		want     bool
	}{
		{"plain", `{"lead": {"_id": "1", "name": "Zoë – CRM"}, "note": "line\nbreak \"quoted\""}`, nil, true},
		{"secret verbatim", `{"note": "is s3cr3t-handshake"}`, nil, false},
		{"member as a name", `{"handshake_key": "x"}`, nil, false},
		{"member in another case, as a value", `{"key": "APIKEY"}`, nil, false},
		{"member with the Kelvin sign", "{\"api\u212aey\": \"x\"}", nil, false},
		{"member with a dotted capital I", "{\"apİKey\": \"x\"}", nil, false},
		{"JSON escape", `{"\u0061piKey": "x"}`, nil, false},
		{"percent", `{"url": "https://x/?q=a%20b"}`, nil, false},
		{"member prefix only", `{"api": "x", "handshake": 1, "key": 2}`, nil, true},
		{"secret that encodings rewrite", `{"note": "nothing here"}`, []string{"a+b/c"}, false},
		{"empty secret ignored", `{"note": "nothing here"}`, []string{""}, true},
		{"empty", ``, nil, true},
	} {
		sec := secrets
		if tc.secrets != nil {
			sec = tc.secrets
		}
		if got := normalize.NothingToScrub([]byte(tc.in), members, sec); got != tc.want {
			t.Errorf("%s: NothingToScrub(%s) = %v, want %v", tc.name, tc.in, got, tc.want)
		}
		checkShortcut(t, []byte(tc.in), members, sec)
	}
}

// checkShortcut checks NothingToScrub's promise on a body: when it says
// nothing is to be scrubbed, ScrubBody changes nothing; and the same of
// an event holding the body (as JSON) in its `extra`.
func checkShortcut(t *testing.T, body []byte, members, secrets []string) {
	t.Helper()
	if normalize.NothingToScrub(body, members, secrets) {
		if out := normalize.ScrubBody(body, members, secrets); string(out) != string(body) {
			t.Errorf("NothingToScrub passed a body ScrubBody changes:\n %s\n %s", body, out)
		}
	}
	var v any
	if err := fastjsonToAny(body, &v); err != nil {
		return
	}
	st, ok := v.(map[string]any)
	if !ok {
		return
	}
	extra, err := structpb.NewStruct(st)
	if err != nil {
		return
	}
	ev := &hookstreamv1.Event{Id: "id", Type: "t", Payload: &hookstreamv1.Event_Closer{Closer: &hookstreamv1.CloserConversation{Extra: extra}}}
	checkEventShortcut(t, ev, members, secrets)
}

// checkEventShortcut: when NothingToScrub passes ev's encoding,
// ScrubEvent leaves ev as it is.
func checkEventShortcut(t *testing.T, ev *hookstreamv1.Event, members, secrets []string) bool {
	t.Helper()
	enc, err := proto.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	if !normalize.NothingToScrub(enc, members, secrets) {
		return false
	}
	scrubbed := proto.Clone(ev).(*hookstreamv1.Event)
	normalize.ScrubEvent(scrubbed, members, secrets)
	if !proto.Equal(ev, scrubbed) {
		t.Errorf("NothingToScrub passed an event ScrubEvent changes:\n %v\n %v", ev, scrubbed)
	}
	return true
}

func fastjsonToAny(body []byte, v *any) error {
	val, err := fastjson.ParseBytes(body)
	if err != nil {
		return err
	}
	var conv func(*fastjson.Value) any
	conv = func(x *fastjson.Value) any {
		switch x.Type() {
		case fastjson.TypeObject:
			m := map[string]any{}
			x.GetObject().Visit(func(k []byte, e *fastjson.Value) { m[string(k)] = conv(e) })
			return m
		case fastjson.TypeArray:
			var out []any
			for _, e := range x.GetArray() {
				out = append(out, conv(e))
			}
			return out
		case fastjson.TypeString:
			return string(x.GetStringBytes())
		case fastjson.TypeNumber:
			return x.GetFloat64()
		case fastjson.TypeTrue:
			return true
		case fastjson.TypeFalse:
			return false
		}
		return nil
	}
	*v = conv(val)
	return nil
}

// TestNothingToScrubOnFixtures runs every vendor fixture through the
// shortcut's promise, with the source's secret (a ClinchPad fixture's
// handshake key) and a test one; a secret put into each event that passes
// must make it fail. The typical webhooks (the harness's Closer closed
// conversation, a Pipedrive v2 change, a ClinchPad activity) must take the
// shortcut, or it saves nothing.
func TestNothingToScrubOnFixtures(t *testing.T) {
	t.Parallel()
	v := normalizetest.Validator(t)
	vendors := map[string]normalize.Normalizer{"closer": closer.New(v), "clinchpad": clinchpad.New(v), "pipedrive": pipedrive.New(v)}
	passed := map[string]bool{}
	for dir, n := range vendors {
		for _, file := range normalizetest.Cases(t, filepath.Join(dir, "testdata")) {
			body, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			secs := append([]string{"s3cr3t-handshake"}, handshakeKey(body)...)
			checkShortcut(t, body, n.SecretMembers(), secs)
			ev, err := normalizetest.Normalize(t, n, body)
			if err != nil {
				continue
			}
			name := dir + "/" + strings.TrimSuffix(filepath.Base(file), ".json")
			if !checkEventShortcut(t, ev, n.SecretMembers(), secs) {
				continue
			}
			passed[name] = true
			for _, leak := range []string{"s3cr3t-handshake", "apiKey", "HANDSHAKE_KEY"} {
				withLeak := proto.Clone(ev).(*hookstreamv1.Event)
				withLeak.Type += "." + leak
				if checkEventShortcut(t, withLeak, n.SecretMembers(), secs) {
					t.Errorf("%s: NothingToScrub passed the event with %q in it", name, leak)
				}
			}
		}
	}
	for _, name := range []string{"closer/closed", "pipedrive/v2_change_deal", "clinchpad/lead_moved"} {
		if !passed[name] {
			t.Errorf("%s does not take the shortcut", name)
		}
	}
	t.Logf("%d fixtures' events take the shortcut", len(passed))
}

func handshakeKey(body []byte) []string {
	v, err := fastjson.ParseBytes(body)
	if err != nil {
		return nil
	}
	if k := string(v.GetStringBytes("handshake_key")); k != "" {
		return []string{k}
	}
	return nil
}

// FuzzNothingToScrub: on any body, NothingToScrub never passes what
// ScrubBody or ScrubEvent would change.
func FuzzNothingToScrub(f *testing.F) {
	for _, seed := range []string{
		`{"handshake_key": "abc"}`, `{"a":[{"key":"apiKey","value":{"x":1}}]}`, `{"x": "s3cr3t\u002dhandshake"}`,
		`handshake_key=abc&x=s3cr3t%2Dhandshake`, "{\"api\u212aey\": 1}", `{"note": "plain"}`, `{"k": "s3cr3t-handshakes"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkShortcut(t, body, members, secrets)
	})
}

// A body after a UTF-8 byte order mark is the same webhook (RFC 8259
// lets a parser ignore it): normalized, not quarantined.
func TestByteOrderMark(t *testing.T) {
	t.Parallel()
	body, err := os.ReadFile("closer/testdata/closed.json")
	if err != nil {
		t.Fatal(err)
	}
	n := closer.New(normalizetest.Validator(t))
	plain, err := normalizetest.Normalize(t, n, body)
	if err != nil {
		t.Fatal(err)
	}
	marked, err := normalizetest.Normalize(t, n, append(append([]byte{}, normalize.BOM...), body...))
	if err != nil {
		t.Fatalf("after a byte order mark: %v", err)
	}
	if !proto.Equal(plain, marked) {
		t.Errorf("after a byte order mark the event differs:\n%v\n%v", plain, marked)
	}
}
