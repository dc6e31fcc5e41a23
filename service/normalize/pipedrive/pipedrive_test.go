package pipedrive_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/normalize/normalizetest"
	"github.com/hookstream/hookstream/service/normalize/pipedrive"
)

func newNormalizer(t testing.TB) *pipedrive.Normalizer {
	return pipedrive.New(normalizetest.Validator(t))
}

// normalizeFile normalizes testdata/<name>.json, which must succeed.
func normalizeFile(t *testing.T, n *pipedrive.Normalizer, name string) *hookstreamv1.Event {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := normalizetest.Normalize(t, n, body)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return ev
}

func TestGolden(t *testing.T) {
	t.Parallel()
	normalizetest.Golden(t, newNormalizer(t), "testdata", nil)
}

// A retry differs only in v1 `retry` or v2 `meta.attempt`; neither may
// change the id. Different events must not collide.
func TestRetryGetsSameID(t *testing.T) {
	t.Parallel()
	n := newNormalizer(t)
	normalizetest.SameDelivery(t, n, "testdata", "v1_updated_deal", "v1_updated_deal_retry", "v1_deleted_deal")
	normalizetest.SameDelivery(t, n, "testdata", "v2_change_deal", "v2_change_deal_retry", "v2_delete_deal")
	seen := map[string]string{}
	for _, name := range []string{"v1_updated_deal", "v1_deleted_deal", "v1_added_person", "v2_change_deal",
		"v1_updated_deal_millis", "v1_updated_deal_millis_same_second", "v1_updated_deal_owner_changed",
		"v2_delete_deal", "v2_change_deal_custom_fields", "v2_change_user_deactivated"} {
		id := normalizetest.ID(t, n, "testdata", name)
		if other, dup := seen[id]; dup {
			t.Errorf("%s and %s share id %s", name, other, id)
		}
		seen[id] = name
	}
}

// Deliveries from before timestamp_micro carry timestamp_milli: two edits
// of one object within one second must stay two events, with
// millisecond times.
func TestMillisecondTimes(t *testing.T) {
	t.Parallel()
	n := newNormalizer(t)
	for name, want := range map[string]string{
		"v1_updated_deal_millis":             "2017-04-22T21:56:17.841Z",
		"v1_updated_deal_millis_same_second": "2017-04-22T21:56:17.903Z",
	} {
		ev := normalizeFile(t, n, name)
		if got := ev.GetOccurredAt().AsTime().Format(time.RFC3339Nano); got != want {
			t.Errorf("%s: occurred_at %s, want %s", name, got, want)
		}
	}
	if a, b := normalizetest.ID(t, n, "testdata", "v1_updated_deal_millis"), normalizetest.ID(t, n, "testdata", "v1_updated_deal_millis_same_second"); a == b {
		t.Errorf("two edits 62 ms apart share id %s", a)
	}
}

// The normalize package reuses its Readers between calls: an event must
// share no memory with what a later call builds, so normalizing other
// bodies, and the same body again, leaves it as it was.
func TestEventOutlivesLaterCalls(t *testing.T) {
	t.Parallel()
	n := newNormalizer(t)
	for _, first := range []string{"v2_change_deal", "v1_updated_deal"} {
		ev := normalizeFile(t, n, first)
		want := proto.Clone(ev)
		for range 3 {
			for _, other := range []string{"v2_change_deal", "v2_change_deal_custom_fields", "v1_updated_deal",
				"v1_added_person", "v1_updated_deal_expanded_links"} {
				normalizeFile(t, n, other)
			}
		}
		if !proto.Equal(ev, want) {
			t.Errorf("%s: event changed by later calls:\n got %v\nwant %v", first, ev, want)
		}
	}
}

func TestAction(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"added": "created", "create": "created", "updated": "updated", "change": "updated",
		"deleted": "deleted", "delete": "deleted", "merged": "merged", "archiveAll": "archive_all",
	} {
		if got := pipedrive.Action(in); got != want {
			t.Errorf("Action(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzNormalize(f *testing.F) { normalizetest.FuzzTarget(f, newNormalizer(f), "testdata") }

func benchmark(b *testing.B, file string) { normalizetest.Benchmark(b, newNormalizer(b), file) }

func BenchmarkNormalizeV2ChangeDeal(b *testing.B) { benchmark(b, "testdata/v2_change_deal.json") }

func BenchmarkNormalizeV1UpdatedDeal(b *testing.B) { benchmark(b, "testdata/v1_updated_deal.json") }

// A v2 user event's meta.id is the user id, so its key is the entity, the
// action and the time, which older user events give in whole seconds: two
// changes of one user within a second are still two events when their
// correlation ids differ, and a retry (another attempt) is still the same.
func TestV2UserChangesWithinOneSecond(t *testing.T) {
	t.Parallel()
	n := newNormalizer(t)
	body, err := os.ReadFile(filepath.Join("testdata", "v2_change_user_deactivated.json"))
	if err != nil {
		t.Fatal(err)
	}
	const corr = `"c0a8012e-77d5-4d1f-b1e2-9f3a6d2c4b10"`
	if !strings.Contains(string(body), corr) || !strings.Contains(string(body), `"attempt": 1`) {
		t.Fatal("the fixture changed: no correlation_id or attempt to vary")
	}
	id := func(b string) string {
		t.Helper()
		ev, err := normalizetest.Normalize(t, n, []byte(b))
		if err != nil {
			t.Fatal(err)
		}
		return ev.GetId()
	}
	first := id(string(body))
	if other := id(strings.Replace(string(body), corr, `"0d1e2f30-4152-4637-8899-aabbccddeeff"`, 1)); other == first {
		t.Error("two changes of one user in the same second, from different requests, got one id")
	}
	if retry := id(strings.Replace(string(body), `"attempt": 1`, `"attempt": 3`, 1)); retry != first {
		t.Errorf("a retry got id %s, want %s", retry, first)
	}
}
