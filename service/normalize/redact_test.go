package normalize_test

import (
	"encoding/json"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/normalize"
)

var (
	members = []string{"handshake_key", "apiKey"}
	secrets = []string{"s3cr3t-handshake"}
)

func TestScrubBody(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in, want string
	}{
		{"member", `{"handshake_key": "abc", "x": 1}`, `{"handshake_key": "[REDACTED]", "x": 1}`},
		{"escaped member name", `{"handshake\u005fkey":"abc"}`, `{"handshake\u005fkey":"[REDACTED]"}`},
		{"escaped member name, Closer", `{"customer":{"api\u004bey":"k"}}`, `{"customer":{"api\u004bey":"[REDACTED]"}}`},
		{"name in another case, or with a prefix", `{"APIKEY": "k", "old_handshake_key": 5}`, `{"APIKEY": "[REDACTED]", "old_handshake_key": "[REDACTED]"}`},
		{"object and array values", `{"apiKey": {"a": [1]}, "handshake_key": ["x"]}`, `{"apiKey": "[REDACTED]", "handshake_key": "[REDACTED]"}`},
		{"null is kept", `{"apiKey": null}`, `{"apiKey": null}`},
		{"repeated member", `{"handshake_key":"a","handshake_key":"b"}`, `{"handshake_key":"[REDACTED]","handshake_key":"[REDACTED]"}`},
		{"key/value pair", `[{"key": "apiKey", "value": "k"}, {"key": "page", "value": "p"}]`, `[{"key": "apiKey", "value": "[REDACTED]"}, {"key": "page", "value": "p"}]`},
		{"key/value pair, value first", `{"value": "k", "key": "api\u004bey"}`, `{"value": "[REDACTED]", "key": "api\u004bey"}`},
		{"secret verbatim", `{"note": "is s3cr3t-handshake!"}`, `{"note": "is [REDACTED]!"}`},
		{"secret JSON-escaped", `{"note": "is s3cr3t\u002dhandshake!"}`, `{"note": "is [REDACTED]!"}`},
		{"secret as a member name", `{"s3cr3t\u002dhandshake": 1}`, `{"[REDACTED]": 1}`},
		{"secret percent-encoded", `{"url": "https://x/?k=s3cr3t%2Dhandshake"}`, `{"url": "[REDACTED]"}`},
		{"malformed: unterminated", `{"lead": {}, "handshake_key" : "abc" `, `{"lead": {}, "handshake_key" : "[REDACTED]" `},
		{"malformed: unterminated string", `{"handshake_key": "abc`, `{"handshake_key": "abc`},
		{"malformed: secret in unterminated string", `{"x": "s3cr3t\u002dhandshake`, `{"x": "[REDACTED]"`},
		{"quote inside", `{"handshake_key":"s3\"cr3t","x":1}`, `{"handshake_key":"[REDACTED]","x":1}`},
		{"form", `lead=1&handshake_key=abc&x=2`, `lead=1&handshake_key=[REDACTED]&x=2`},
		{"form, encoded name", `handshake%5Fkey=abc`, `handshake%5Fkey=[REDACTED]`},
		{"form, encoded secret", `x=s3cr3t%2Dhandshake&y=2`, `x=[REDACTED]&y=2`},
		{"form, JSON field", `payload=%7B%22handshake_key%22%3A%22abc%22%7D`, `payload=%7B%22handshake_key%22%3A%22%5BREDACTED%5D%22%7D`},
		{"text", `key s3cr3t-handshake`, `key [REDACTED]`},
		{"ClinchPad custom field named like a secret", `{"activity": {"record_name": "apiKey", "record_value": "S3", "old_record_value": "OLD"}}`,
			`{"activity": {"record_name": "apiKey", "record_value": "[REDACTED]", "old_record_value": "[REDACTED]"}}`},
		{"ClinchPad custom field, escaped names", `{"record\u005fvalue": "S3", "record_name": "old_apikey"}`, `{"record\u005fvalue": "[REDACTED]", "record_name": "old_apikey"}`},
		{"ClinchPad custom field of another name", `{"record_name": "plan", "record_value": "gold"}`, `{"record_name": "plan", "record_value": "gold"}`},
		{"JSON after a byte order mark", "\xef\xbb\xbf{\"apiKey\": \"k\", \"u\": \"a=1&b=2\"}", "\xef\xbb\xbf{\"apiKey\": \"[REDACTED]\", \"u\": \"a=1&b=2\"}"},
		{"nothing to do", `{"lead": {"_id": "1"}, "value": "v", "key": "page"}`, `{"lead": {"_id": "1"}, "value": "v", "key": "page"}`},
	} {
		got := string(normalize.ScrubBody([]byte(tc.in), members, secrets))
		if got != tc.want {
			t.Errorf("%s:\n got  %s\n want %s", tc.name, got, tc.want)
		}
	}
	plain := []byte(`{"lead": {"_id": "1"}}`)
	if got := normalize.ScrubBody(plain, members, secrets); &got[0] != &plain[0] {
		t.Error("a body without secrets was copied")
	}
}

func TestScrubEvent(t *testing.T) {
	t.Parallel()
	extra, _ := structpb.NewStruct(map[string]any{
		"apiKey":  "k1",
		"nested":  map[string]any{"list": []any{map[string]any{"ApiKey": "k2"}, "s3cr3t-handshake"}},
		"pair":    map[string]any{"key": "apiKey", "value": "k3"},
		"another": map[string]any{"key": "page", "value": "p"},
	})
	ev := &hookstreamv1.Event{
		Id: "id", Source: "src", Type: "conversation.created",
		Subject: &hookstreamv1.Subject{Name: "name s3cr3t-handshake"},
		Changes: []*hookstreamv1.Change{
			{Field: "handshake_key", OldValue: structpb.NewStringValue("old")},
			{Field: "records.apiKey", NewValue: structpb.NewStringValue("k4")},
			{Field: "stage", NewValue: structpb.NewStringValue("x%20s3cr3t%2Dhandshake")},
		},
		Payload: &hookstreamv1.Event_Closer{Closer: &hookstreamv1.CloserConversation{
			Extra: extra,
			Customer: &hookstreamv1.CloserCustomer{Id: "c", BackOfficeData: []*hookstreamv1.CloserBackOfficeEntry{
				{Key: "page", Value: "p"}, {Key: "apiKey", Value: "k5"}, {Key: "x", Value: "y"},
			}},
			MessageHistory: []*hookstreamv1.CloserMessage{{Message: "token s3cr3t-handshake"}},
		}},
	}
	normalize.ScrubEvent(ev, members, secrets)
	raw, _ := protojson.Marshal(ev)
	for _, leak := range []string{"k1", "k2", "k3", "k4", "k5", "old", "s3cr3t"} {
		if strings.Contains(string(raw), `"`+leak) || strings.Contains(string(raw), leak+`"`) || strings.Contains(string(raw), "s3cr3t") {
			t.Errorf("scrubbed event holds %q: %s", leak, raw)
		}
	}
	c := ev.GetCloser()
	if n := len(c.GetCustomer().GetBackOfficeData()); n != 2 || c.GetCustomer().GetBackOfficeData()[1].GetKey() != "x" {
		t.Errorf("backOfficeData: %v, want page and x", c.GetCustomer().GetBackOfficeData())
	}
	if len(ev.GetChanges()) != 1 || ev.GetChanges()[0].GetField() != "stage" || ev.GetChanges()[0].GetNewValue().GetStringValue() != normalize.Redacted {
		t.Errorf("changes: %v", ev.GetChanges())
	}
	if got := ev.GetSubject().GetName(); got != "name [REDACTED]" {
		t.Errorf("subject name %q", got)
	}
	if got := c.GetExtra().GetFields()["another"].GetStructValue().GetFields()["value"].GetStringValue(); got != "p" {
		t.Errorf("an unrelated key/value object lost its value: %q", got)
	}
	if ev.GetId() != "id" || ev.GetSource() != "src" {
		t.Errorf("id or source changed: %s %s", ev.GetId(), ev.GetSource())
	}

	// A ClinchPad custom field named like a secret keeps no value.
	rec, other := "apiKey", "plan"
	value, old := "S3CRET-REC", "OLD-SEC"
	cp := &hookstreamv1.Event{Id: "id", Payload: &hookstreamv1.Event_Clinchpad{Clinchpad: &hookstreamv1.ClinchPadWebhook{
		Activity: &hookstreamv1.ClinchPadActivity{RecordName: &rec, RecordValue: &value, OldRecordValue: &old}}}}
	normalize.ScrubEvent(cp, members, secrets)
	if a := cp.GetClinchpad().GetActivity(); a.RecordValue != nil || a.OldRecordValue != nil || a.GetRecordName() != "apiKey" {
		t.Errorf("ClinchPad custom field apiKey: %v, want its values gone", a)
	}
	cp.GetClinchpad().Activity = &hookstreamv1.ClinchPadActivity{RecordName: &other, RecordValue: &value}
	normalize.ScrubEvent(cp, members, secrets)
	if a := cp.GetClinchpad().GetActivity(); a.GetRecordValue() != value {
		t.Errorf("ClinchPad custom field plan lost its value: %v", a)
	}
}

// FuzzScrubBody: on any body, no secret survives verbatim, no member value
// survives in valid JSON, and valid JSON stays valid.
func FuzzScrubBody(f *testing.F) {
	for _, seed := range []string{
		`{"handshake_key": "abc"}`, `{"a":[{"key":"apiKey","value":{"x":1}}]}`, `{"x": "s3cr3t\u002dhandshake"}`,
		`handshake_key=abc&x=s3cr3t%2Dhandshake`, `{"handshake_key" : "abc" `, `[1, "a\"b", {"apiKey": [1, {}]}]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		out := normalize.ScrubBody(body, members, secrets)
		if strings.Contains(string(out), secrets[0]) {
			t.Fatalf("secret kept: %s -> %s", body, out)
		}
		if !json.Valid(body) {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("valid JSON became invalid: %s -> %s", body, out)
		}
		var check func(v any)
		check = func(v any) {
			switch v := v.(type) {
			case map[string]any:
				for k, e := range v {
					if strings.Contains(strings.ToLower(k), "apikey") && e != nil && e != normalize.Redacted {
						t.Fatalf("member %q kept %v: %s -> %s", k, e, body, out)
					}
					check(e)
				}
			case []any:
				for _, e := range v {
					check(e)
				}
			}
		}
		var v any
		if err := json.Unmarshal(out, &v); err == nil {
			check(v)
		}
	})
}
