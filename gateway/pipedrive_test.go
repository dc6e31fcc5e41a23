package gateway

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/filter"
)

// TestPipedriveFilter: a compatibility webhook's action and object select
// exactly the Pipedrive events Pipedrive would send it, over the
// normalizer's own golden events (v1 and v2), with v2's and v1's action
// names, camel-case and plural objects and the wildcards.
func TestPipedriveFilter(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("../service/normalize/pipedrive/testdata/*.golden.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("golden files: %v", err)
	}
	events := map[string]*hookstreamv1.Event{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var golden struct {
			Event json.RawMessage `json:"event"`
		}
		if err := json.Unmarshal(b, &golden); err != nil {
			t.Fatal(err)
		}
		if golden.Event == nil {
			continue // a rejected fixture
		}
		ev := &hookstreamv1.Event{}
		if err := protojson.Unmarshal(golden.Event, ev); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		events[strings.TrimSuffix(filepath.Base(f), ".golden.json")] = ev
	}
	all := func(keep func(name string) bool) []string {
		var out []string
		for name := range events {
			if keep(name) {
				out = append(out, name)
			}
		}
		return out
	}
	dealUpdates := all(func(n string) bool {
		return strings.HasPrefix(n, "v1_updated_deal") || strings.HasPrefix(n, "v2_change_deal")
	})
	compiler, err := filter.NewCompiler()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		action, object string
		want           []string
	}{
		{"change", "deal", dealUpdates},
		{"updated", "deal", dealUpdates},
		{"change", "deals", dealUpdates},
		{"change", "person", []string{"v1_merged_person", "v2_change_person_merged"}},
		{"merged", "person", []string{"v1_merged_person", "v2_change_person_merged"}},
		{"updated", "person", nil},
		{"create", "person", []string{"v1_added_person", "v2_create_person"}},
		{"added", "activityType", []string{"v1_added_activity_type"}},
		{"delete", "deal", []string{"v1_deleted_deal", "v2_delete_deal"}},
		{"deleted", "persons", []string{"v2_delete_person_merged"}},
		{"*", "deal", append([]string{"v1_deleted_deal", "v2_delete_deal"}, dealUpdates...)},
		{"create", "*", all(func(n string) bool { return strings.HasPrefix(n, "v1_added") || strings.HasPrefix(n, "v2_create") })},
		{"*", "*", all(func(string) bool { return true })},
	} {
		expr := pipedriveFilter([]string{"golden-source"}, pipedriveActions[c.action], c.object)
		f, err := compiler.Compile(expr)
		if err != nil {
			t.Fatalf("%s/%s: %s: %v", c.action, c.object, expr, err)
		}
		var got []string
		for name, ev := range events {
			ok, err := f.Match(ev)
			if err != nil {
				t.Fatalf("%s/%s on %s: %v", c.action, c.object, name, err)
			}
			if ok {
				got = append(got, name)
			}
		}
		slices.Sort(got)
		want := slices.Clone(c.want)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s/%s matches %v, want %v", c.action, c.object, got, want)
		}
	}
	// Another source's events are not a webhook's of this one.
	f, err := compiler.Compile(pipedriveFilter([]string{"other"}, nil, "*"))
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := f.Match(events["v2_change_deal"]); ok {
		t.Error("a webhook of source other matched an event of golden-source")
	}
	// Without ?source=, a webhook covers every Pipedrive source, also one
	// configured after it was created: no list of sources is written in.
	f, err = compiler.Compile(pipedriveFilter(nil, nil, "*"))
	if err != nil {
		t.Fatal(err)
	}
	later := proto.Clone(events["v2_change_deal"]).(*hookstreamv1.Event)
	later.Source = "pipedrive-added-later"
	if ok, _ := f.Match(later); !ok {
		t.Error("a webhook for every source did not match an event of a source configured later")
	}
}

// An endpoint's validation error is told as the addWebhook parameter it
// is about.
func TestPipedriveField(t *testing.T) {
	t.Parallel()
	for msg, want := range map[string][2]string{
		"endpoint.basic_auth.username: does not match regex pattern `^[^:\\x00-\\x1f]*$`": {"http_auth_user", `must not contain ":" or control characters`},
		"endpoint.basic_auth.username: must be at most 256 characters; endpoint.url: x":   {"http_auth_user", "must be at most 256 characters"},
		"endpoint.basic_auth.password: must be at most 256 characters":                    {"http_auth_password", "must be at most 256 characters"},
		"endpoint.description: must be at most 1024 characters":                           {"name", "must be at most 1024 characters"},
		"url resolves to 10.0.0.1, which delivery.allow_networks does not allow":          {"subscription_url", "url resolves to 10.0.0.1, which delivery.allow_networks does not allow"},
	} {
		if field, text := pipedriveField(msg); field != want[0] || text != want[1] {
			t.Errorf("pipedriveField(%q) = %q, %q; want %q, %q", msg, field, text, want[0], want[1])
		}
	}
}

// TestToPipedriveHealth: the fields Pipedrive tells its users to watch
// (is_active, remove_time, remove_reason, last_delivery_time,
// last_http_status) follow the endpoint's state and last attempt.
func TestToPipedriveHealth(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	changed := time.Date(2026, 3, 2, 10, 30, 0, 0, time.UTC)
	attempt := time.Date(2026, 3, 2, 10, 29, 58, 123_456_789, time.FixedZone("CET", 3600))
	str := func(s string) *string { return &s }
	num := func(n int) *int { return &n }
	for name, c := range map[string]struct {
		ep                              *hookstreamv1.Endpoint
		active                          int
		removeTime, removeReason, lastT *string
		lastStatus                      *int
	}{
		"never attempted": {ep: &hookstreamv1.Endpoint{State: hookstreamv1.EndpointState_ENDPOINT_STATE_ACTIVE}, active: 1},
		"delivered": {ep: &hookstreamv1.Endpoint{State: hookstreamv1.EndpointState_ENDPOINT_STATE_ACTIVE,
			LastAttemptTime: timestamppb.New(attempt), LastAttemptStatusCode: 204},
			active: 1, lastT: str("2026-03-02T09:29:58.123Z"), lastStatus: num(204)},
		"receiver failing": {ep: &hookstreamv1.Endpoint{State: hookstreamv1.EndpointState_ENDPOINT_STATE_ACTIVE,
			LastAttemptTime: timestamppb.New(attempt), LastAttemptStatusCode: 500},
			active: 1, lastT: str("2026-03-02T09:29:58.123Z"), lastStatus: num(500)},
		"no response (Pipedrive's Error)": {ep: &hookstreamv1.Endpoint{State: hookstreamv1.EndpointState_ENDPOINT_STATE_ACTIVE,
			LastAttemptTime: timestamppb.New(attempt)},
			active: 1, lastT: str("2026-03-02T09:29:58.123Z")},
		"paused": {ep: &hookstreamv1.Endpoint{State: hookstreamv1.EndpointState_ENDPOINT_STATE_PAUSED}},
		"disabled by 410": {ep: &hookstreamv1.Endpoint{State: hookstreamv1.EndpointState_ENDPOINT_STATE_DISABLED,
			DisabledReason:  "the receiver answered 410 Gone at 2026-03-02T10:30:00Z",
			LastAttemptTime: timestamppb.New(attempt), LastAttemptStatusCode: 410},
			removeTime: str("2026-03-02T10:30:00.000Z"), removeReason: str("the receiver answered 410 Gone at 2026-03-02T10:30:00Z"),
			lastT: str("2026-03-02T09:29:58.123Z"), lastStatus: num(410)},
	} {
		c.ep.Pipedrive = &hookstreamv1.PipedriveWebhook{Id: 7}
		c.ep.CreateTime, c.ep.UpdateTime = timestamppb.New(created), timestamppb.New(changed)
		got := toPipedrive(c.ep)
		if got.IsActive != c.active || !reflect.DeepEqual(got.RemoveTime, c.removeTime) || !reflect.DeepEqual(got.RemoveReason, c.removeReason) ||
			!reflect.DeepEqual(got.LastDeliveryTime, c.lastT) || !reflect.DeepEqual(got.LastHTTPStatus, c.lastStatus) {
			b, _ := json.Marshal(got)
			t.Errorf("%s: %s", name, b)
		}
		if got.AddTime != "2026-03-01T09:00:00.000Z" {
			t.Errorf("%s: add_time %q", name, got.AddTime)
		}
	}
}
