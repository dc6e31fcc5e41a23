package system

import (
	"context"
	"encoding/json"
	"net/http"
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
	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/internal/vendors"
	"github.com/hookstream/hookstream/service/normalize"
	"github.com/hookstream/hookstream/service/normalize/normalizetest"
)

// upperSubject is a test-only "fixed" normalizer: the vendor's own, with
// the subject's name in upper case.
type upperSubject struct{ normalize.Normalizer }

func (u upperSubject) Normalize(in normalize.Input) (*hookstreamv1.Event, error) {
	ev, err := u.Normalizer.Normalize(in)
	if err == nil && ev.GetSubject() != nil {
		ev.Subject.Name = strings.ToUpper(ev.Subject.Name)
	}
	return ev, err
}

// variantRegistry is the binary's registry with the Pipedrive normalizer
// replaced by upperSubject.
func variantRegistry(t *testing.T) *normalize.Registry {
	t.Helper()
	var vs []normalize.Vendor
	for _, v := range vendors.Registry.All() {
		if v.Name == "pipedrive" {
			orig := v.New
			v.New = func(val protovalidate.Validator) normalize.Normalizer { return upperSubject{orig(val)} }
		}
		vs = append(vs, v)
	}
	reg, err := normalize.NewRegistry(vs...)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// replayRun calls ReplayNormalization until the run is complete and sums
// the batches' counts.
func replayRun(t *testing.T, s *server, req *hookstreamv1.ReplayNormalizationRequest) *hookstreamv1.ReplayNormalizationResponse {
	t.Helper()
	admin := hookstreamv1.NewAdminServiceClient(s.conn)
	sum := &hookstreamv1.ReplayNormalizationResponse{}
	req = proto.Clone(req).(*hookstreamv1.ReplayNormalizationRequest)
	for {
		resp, err := admin.ReplayNormalization(context.Background(), req)
		if err != nil {
			t.Fatalf("ReplayNormalization(%v): %v", req, err)
		}
		sum.Scanned += resp.GetScanned()
		sum.Unchanged += resp.GetUnchanged()
		sum.Changed += resp.GetChanged()
		sum.Appended += resp.GetAppended()
		sum.WithoutRaw += resp.GetWithoutRaw()
		sum.Failed += resp.GetFailed()
		sum.CorrectionsSkipped += resp.GetCorrectionsSkipped()
		sum.Failures = append(sum.Failures, resp.GetFailures()...)
		if resp.GetNextPageToken() == "" {
			return sum
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

func countEvents(t *testing.T, s *server) int {
	t.Helper()
	n, token := 0, ""
	for {
		resp, err := s.events().ListEvents(context.Background(), &hookstreamv1.ListEventsRequest{PageSize: 1000, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		n += len(resp.GetEvents())
		if token = resp.GetNextPageToken(); token == "" {
			return n
		}
	}
}

// The variant's output is the Pipedrive golden output with the subject's
// name in upper case, and nothing else changed.
func TestReplayVariantGolden(t *testing.T) {
	t.Parallel()
	if _, ok := vendors.Registry.Lookup("pipedrive"); !ok {
		t.Skip("built without pipedrive")
	}
	v, _ := variantRegistry(t).Lookup("pipedrive")
	n := v.New(normalizetest.Validator(t))
	for _, name := range []string{"v1_updated_deal", "v2_change_deal", "v1_added_person"} {
		got, err := normalizetest.Normalize(t, n, fixture(t, "pipedrive", name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		golden, err := os.ReadFile(filepath.Join(testdataRoot, "pipedrive", "testdata", name+".golden.json"))
		if err != nil {
			t.Fatal(err)
		}
		var res struct{ Event json.RawMessage }
		if err := json.Unmarshal(golden, &res); err != nil {
			t.Fatal(err)
		}
		want := &hookstreamv1.Event{}
		if err := protojson.Unmarshal(res.Event, want); err != nil {
			t.Fatalf("%s golden: %v", name, err)
		}
		want.Subject.Name = strings.ToUpper(want.Subject.Name)
		if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
			t.Errorf("%s: variant output differs from the golden file with an upper-case subject name (-want +got):\n%s", name, diff)
		}
	}
}

// Re-normalizing history: with the normalizers events were stored with, a
// dry run finds no difference in any source; after a normalizer change
// (the test-only variant, on a second server over the same log), a dry run
// counts the events it changes and appends nothing, a replay appends one
// corrected event for each, superseding the original, which live
// Subscribe streams receive; a second replay appends nothing. An event
// stored without its raw request is counted, not replayed.
func TestReplayNormalization(t *testing.T) {
	t.Parallel()
	if _, ok := vendors.Registry.Lookup("pipedrive"); !ok {
		t.Skip("built without pipedrive")
	}
	dir := t.TempDir()
	pd := pipedriveAuth(pdPassword)

	// An event stored without its raw request.
	s0 := startServer(t, testConfig(t, dir, "  keep_raw: false\n"))
	if r := s0.post("/v1/webhooks/pipedrive", fixture(t, "pipedrive", "v1_deleted_deal"), pd); r.code != http.StatusOK {
		t.Fatalf("v1_deleted_deal: %d %v", r.code, r.body)
	}
	s0.stop()

	cfg := testConfig(t, dir, "")
	s1 := startServer(t, cfg)
	perSource := map[string]int32{}
	var pdIDs []string
	for _, smp := range rawSamples(t) {
		r := s1.post(smp.path, smp.body, smp.header)
		if r.code != http.StatusOK || r.body["status"] != "accepted" {
			t.Fatalf("%s: %d %v", smp.name, r.code, r.body)
		}
		src := strings.SplitN(strings.TrimPrefix(smp.path, "/v1/webhooks/"), "?", 2)[0]
		perSource[src]++
		if src == "pipedrive" {
			pdIDs = append(pdIDs, r.body["event_id"].(string))
		}
	}
	r := s1.post("/v1/webhooks/pipedrive", fixture(t, "pipedrive", "v1_added_person"), pd)
	if r.code != http.StatusOK || r.body["status"] != "accepted" {
		t.Fatalf("v1_added_person: %d %v", r.code, r.body)
	}
	perSource["pipedrive"]++
	pdIDs = append(pdIDs, r.body["event_id"].(string))

	// Fix-free: no source has a difference.
	for src, n := range perSource {
		got := replayRun(t, s1, &hookstreamv1.ReplayNormalizationRequest{Source: src, DryRun: true})
		wantWithout := int32(0)
		if src == "pipedrive" {
			wantWithout = 1
		}
		if got.GetChanged() != 0 || got.GetUnchanged() != n || got.GetFailed() != 0 || got.GetWithoutRaw() != wantWithout || got.GetAppended() != 0 {
			t.Errorf("%s: fix-free dry run: %v, want %d unchanged, %d without raw, nothing else", src, got, n, wantWithout)
		}
	}
	s1.stop()

	// The same log, served with the changed Pipedrive normalizer.
	s2 := startServerWith(t, cfg, variantRegistry(t))
	ctx := context.Background()
	olds := map[string]*hookstreamv1.Event{}
	for _, id := range pdIDs {
		got, err := s2.events().GetEvent(ctx, &hookstreamv1.GetEventRequest{Id: id, IncludeRaw: true})
		if err != nil {
			t.Fatal(err)
		}
		ev := got.GetEvent()
		if ev.GetSubject().GetName() == strings.ToUpper(ev.GetSubject().GetName()) {
			t.Fatalf("event %s: subject name %q is not changed by the variant; pick another fixture", id, ev.GetSubject().GetName())
		}
		olds[id] = ev
	}
	n := int32(len(olds))
	before := countEvents(t, s2)
	live := s2.subscribe(&hookstreamv1.SubscribeRequest{
		Start:      &hookstreamv1.SubscribeRequest_Position{Position: hookstreamv1.StartPosition_START_POSITION_NOW},
		IncludeRaw: true,
	})
	if _, err := live.stream.Header(); err != nil { // positioned at the hub
		t.Fatal(err)
	}

	dry := replayRun(t, s2, &hookstreamv1.ReplayNormalizationRequest{Source: "pipedrive", DryRun: true})
	if dry.GetChanged() != n || dry.GetUnchanged() != 0 || dry.GetAppended() != 0 || dry.GetWithoutRaw() != 1 || dry.GetFailed() != 0 {
		t.Errorf("dry run with the variant: %v, want %d changed, 1 without raw, nothing appended", dry, n)
	}
	if got := countEvents(t, s2); got != before {
		t.Errorf("dry run: %d events in the log, want %d (nothing appended)", got, before)
	}
	// Other sources are not touched by the Pipedrive change.
	if got := replayRun(t, s2, &hookstreamv1.ReplayNormalizationRequest{Source: "closer", DryRun: true}); got.GetChanged() != 0 {
		t.Errorf("closer dry run with the Pipedrive variant: %v", got)
	}
	// A time range that holds none of the events.
	future := timestamppb.New(time.Now().Add(time.Hour))
	if got := replayRun(t, s2, &hookstreamv1.ReplayNormalizationRequest{Source: "pipedrive", StartTime: future, DryRun: true}); got.GetChanged()+got.GetUnchanged()+got.GetWithoutRaw() != 0 {
		t.Errorf("dry run from an hour ahead: %v, want nothing in range", got)
	}
	past := timestamppb.New(time.Now().Add(-time.Hour))
	if got := replayRun(t, s2, &hookstreamv1.ReplayNormalizationRequest{Source: "pipedrive", EndTime: past, DryRun: true}); got.GetChanged()+got.GetUnchanged()+got.GetWithoutRaw() != 0 {
		t.Errorf("dry run up to an hour ago: %v, want nothing in range", got)
	}

	run := replayRun(t, s2, &hookstreamv1.ReplayNormalizationRequest{Source: "pipedrive"})
	if run.GetChanged() != n || run.GetAppended() != n {
		t.Errorf("replay: %v, want %d changed and appended", run, n)
	}
	if got := countEvents(t, s2); got != before+int(n) {
		t.Errorf("after the replay: %d events in the log, want %d", got, before+int(n))
	}
	seen := map[string]bool{}
	for range n {
		ev := live.next().GetEvent()
		old, ok := olds[ev.GetSupersedes()]
		switch {
		case !ok:
			t.Fatalf("live stream: event %s supersedes %q, not one of the replayed events", ev.GetId(), ev.GetSupersedes())
		case seen[ev.GetSupersedes()]:
			t.Fatalf("live stream: %s superseded twice", ev.GetSupersedes())
		case ev.GetId() == old.GetId():
			t.Errorf("corrected event has the original's id %s", ev.GetId())
		}
		seen[ev.GetSupersedes()] = true
		want := proto.Clone(old).(*hookstreamv1.Event)
		want.Subject.Name = strings.ToUpper(want.Subject.Name)
		want.Id, want.Supersedes = ev.GetId(), old.GetId()
		if diff := cmp.Diff(want, ev, protocmp.Transform()); diff != "" {
			t.Errorf("corrected event of %s (-want +got):\n%s", old.GetId(), diff)
		}
	}
	live.quiet(300 * time.Millisecond)

	again := replayRun(t, s2, &hookstreamv1.ReplayNormalizationRequest{Source: "pipedrive"})
	if again.GetAppended() != 0 || again.GetChanged() != n || again.GetCorrectionsSkipped() != n {
		t.Errorf("second replay: %v, want %d changed (originals), %d corrections skipped, nothing appended", again, n, n)
	}
	if got := countEvents(t, s2); got != before+int(n) {
		t.Errorf("after the second replay: %d events in the log, want %d", got, before+int(n))
	}

	// Over REST, with the admin scope only.
	body := []byte(`{"source": "pipedrive", "dry_run": true}`)
	if r := s2.post("/v1/events:replayNormalization", body, map[string]string{"Authorization": "Bearer " + readToken}); r.code != http.StatusForbidden {
		t.Errorf("REST replay with a read token: %d %v, want 403", r.code, r.body)
	}
	r = s2.post("/v1/events:replayNormalization", body, map[string]string{"Authorization": "Bearer " + adminToken})
	if r.code != http.StatusOK || r.body["changed"] != float64(n) || r.body["withoutRaw"] != float64(1) {
		t.Errorf("REST dry run: %d %v, want %d changed, 1 without raw", r.code, r.body, n)
	}
}
