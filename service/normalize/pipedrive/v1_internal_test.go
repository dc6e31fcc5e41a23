package pipedrive

import (
	"testing"

	"google.golang.org/protobuf/types/known/structpb"
)

func TestDiffV1Rules(t *testing.T) {
	t.Parallel()
	obj := func(m map[string]any) *structpb.Struct {
		s, err := structpb.NewStruct(m)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, tc := range []struct {
		name     string
		prev     map[string]any
		cur      map[string]any
		wantKeys []string
	}{
		{"key only in previous", map[string]any{"a": 1.0, "gone": "x"}, map[string]any{"a": 1.0}, nil},
		{"key only in current", map[string]any{"a": 1.0}, map[string]any{"a": 1.0, "company_id": 11149162.0}, nil},
		{"number vs numeric string", map[string]any{"value": 12000.0, "visible_to": "3"}, map[string]any{"value": "12000.00", "visible_to": 3.0}, nil},
		{"text that only looks numeric", map[string]any{"code": "0x10", "n": " 1"}, map[string]any{"code": 16.0, "n": 1.0}, []string{"code", "n"}},
		{"empty values", map[string]any{"a": []any{}, "b": nil, "c": map[string]any{}}, map[string]any{"a": nil, "b": []any{}, "c": nil}, nil},
		{"empty vs empty string is a change", map[string]any{"a": nil}, map[string]any{"a": ""}, []string{"a"}},
		{"bare id vs expanded link", map[string]any{"user_id": 2428657.0, "person_id": 221.0},
			map[string]any{"user_id": map[string]any{"id": 2428657.0, "name": "Erika", "value": 2428657.0}, "person_id": map[string]any{"name": "Jane", "value": "221"}}, nil},
		{"expanded both sides, same id, other details", map[string]any{"org_id": map[string]any{"name": "Acme", "value": 87.0}},
			map[string]any{"org_id": map[string]any{"name": "Acme GmbH", "value": 87.0}}, nil},
		{"expanded link to another record", map[string]any{"user_id": 1.0}, map[string]any{"user_id": map[string]any{"id": 2.0, "value": 2.0}}, []string{"user_id"}},
		{"nested change", map[string]any{"prices": []any{map[string]any{"price": 240.0}}}, map[string]any{"prices": []any{map[string]any{"price": 264.0}}}, []string{"prices"}},
		{"nested shape drift", map[string]any{"prices": []any{map[string]any{"price": 240.0, "old": 1.0}}}, map[string]any{"prices": []any{map[string]any{"price": "240"}}}, nil},
		{"bool", map[string]any{"done": false}, map[string]any{"done": true}, []string{"done"}},
		{"custom field", map[string]any{"9f1c0e7d2b4a6c8e0f1a3b5c7d9e1f2a3b4c5d6e": "a"}, map[string]any{"9f1c0e7d2b4a6c8e0f1a3b5c7d9e1f2a3b4c5d6e": "b"},
			[]string{"custom_fields.9f1c0e7d2b4a6c8e0f1a3b5c7d9e1f2a3b4c5d6e"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, c := range diffV1(obj(tc.prev), obj(tc.cur)) {
				got = append(got, c.GetField())
			}
			if len(got) != len(tc.wantKeys) {
				t.Fatalf("changes %v, want %v", got, tc.wantKeys)
			}
			for i := range got {
				if got[i] != tc.wantKeys[i] {
					t.Fatalf("changes %v, want %v", got, tc.wantKeys)
				}
			}
		})
	}
}

func TestFormatNumber(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   float64
		want string
	}{
		{0, "0"},
		{-3, "-3"},
		{221, "221"},
		{1e15 - 1, "999999999999999"},
		{1234567890123456, "1234567890123456"},
		{1 << 53, "9007199254740992"},
		{-(1 << 53), "-9007199254740992"},
		{1e20, "100000000000000000000"},
		{12345678901234567890, "12345678901234567000"},
		{1.5, "1.5"},
		{0.1, "0.1"},
		{1e-7, "1e-07"},
	} {
		if got := formatNumber(tc.in); got != tc.want {
			t.Errorf("formatNumber(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRetryKey(t *testing.T) {
	t.Parallel()
	same := func(a, b string) bool { return string(RetryKey([]byte(a))) == string(RetryKey([]byte(b))) }
	if !same(`{"retry": 0, "event": "updated.deal", "meta": {"id": 7}}`, `{"retry": 3, "event": "updated.deal", "meta": {"id": 7}}`) {
		t.Error("v1 retries 0 and 3 key differently")
	}
	if !same(`{"meta": {"attempt": 1, "entity": "deal"}, "data": {"id": 1}}`, `{"meta": {"attempt": 4, "entity": "deal"}, "data": {"id": 1}}`) {
		t.Error("v2 attempts 1 and 4 key differently")
	}
	if same(`{"meta": {"attempt": 1, "entity": "deal"}, "data": {"id": 1}}`, `{"meta": {"attempt": 1, "entity": "deal"}, "data": {"id": 2}}`) {
		t.Error("two deliveries key the same")
	}
	// Bodies it cannot or need not change are their own key, unchanged.
	for _, b := range []string{`{"meta": {"action": "change"`, `[1, 2]`, `{"data": {"attempt": 2, "retry": 1}}`, "\xff\xfe"} {
		if got := string(RetryKey([]byte(b))); got != b {
			t.Errorf("RetryKey(%q) = %q, want the body itself", b, got)
		}
	}
}

func TestAsDelivered(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in, want string
		attempt        int
	}{
		{"v2", `{"meta":{"action":"change","entity":"deal","webhook_id":"884121","attempt":2,"id":"e1"},"data":{"id":1}}`,
			`{"meta":{"action":"change","entity":"deal","webhook_id":"42","attempt":3,"id":"e1"},"data":{"id":1}}`, 3},
		{"v2 without attempt", `{"meta":{"entity":"deal","webhook_id":884121},"data":null}`,
			`{"meta":{"entity":"deal","webhook_id":"42","attempt":1},"data":null}`, 1},
		{"v1", `{"v":1,"meta":{"object":"deal","webhook_id":"884120"},"current":{"id":1},"retry":1,"event":"updated.deal"}`,
			`{"v":1,"meta":{"object":"deal","webhook_id":"42"},"current":{"id":1},"retry":2,"event":"updated.deal"}`, 3},
		{"not an object", `[1,2]`, `[1,2]`, 2},
		{"not JSON", `{"meta":`, `{"meta":`, 2},
	} {
		if got := string(AsDelivered([]byte(tc.in), "42", tc.attempt)); got != tc.want {
			t.Errorf("%s: AsDelivered = %s, want %s", tc.name, got, tc.want)
		}
	}
}
