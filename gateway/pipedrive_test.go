package gateway

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

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
}
