package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/internal/natstest"
	"github.com/hookstream/hookstream/service/delivery/webhook"
)

// openTestStore opens delivery's streams on an embedded JetStream server
// (random port, temporary directory) and returns the store and its
// connection.
func openTestStore(t *testing.T) (*Store, *nats.Conn) {
	t.Helper()
	return openTestStoreWith(t, StoreOptions{Plain: true, Max: 10, AttemptsRetention: time.Hour, DeadLetterRetention: time.Hour})
}

// openTestStoreWith is openTestStore with the given options.
func openTestStoreWith(t *testing.T, o StoreOptions) (*Store, *nats.Conn) {
	t.Helper()
	ns := natstest.Start(t, server.Options{})
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := OpenStore(context.Background(), js, o)
	if err != nil {
		t.Fatal(err)
	}
	return st, nc
}

// TestLastAttempt: the newest attempt of an endpoint over all its keys,
// read with a single direct get (nats-server answers a wildcard
// last_by_subj), never another endpoint's, nil when there is none; a
// record of the layout before (one message, no header) is read too.
func TestLastAttempt(t *testing.T) {
	t.Parallel()
	st, nc := openTestStore(t)
	ctx := context.Background()
	rec := mustRecorder(t, st, slog.New(slog.DiscardHandler), nil)
	record := func(endpoint string, seq uint64, eventID string, status int) *hookstreamv1.DeliveryAttempt {
		a := attemptRecord(endpoint, eventID, 1, "", time.Now(), webhook.Result{Status: status, Latency: time.Millisecond})
		rec.add(a, seq)
		return a
	}
	// One flush; ep_a's newest record is on the key of its first.
	record("ep_a", 1, "aaa0000000000000", 500)
	record("ep_a", 3*attemptSpan, "bbb0000000000000", 204)
	want := record("ep_a", 2, "ccc1111111111111", 0)
	// Endpoints whose ids extend or share ep_a's are not ep_a's.
	record("ep_ab", 4, "ccc0000000000000", 201)
	other := record("ep_b", 5, "ddd0000000000000", 404)
	if err := rec.sync(ctx); err != nil {
		t.Fatal(err)
	}

	before := nc.Stats().OutMsgs
	got, err := st.LastAttempt(ctx, "ep_a")
	if err != nil {
		t.Fatal(err)
	}
	if n := nc.Stats().OutMsgs - before; n != 1 {
		t.Errorf("LastAttempt sent %d messages, want one request", n)
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("LastAttempt(ep_a) (-want +got):\n%s", diff)
	}
	if got, err := st.LastAttempt(ctx, "ep_b"); err != nil || !proto.Equal(got, other) {
		t.Errorf("LastAttempt(ep_b) = %v, %v; want %v", got, err, other)
	}
	for _, id := range []string{"ep_none", "ep", "ep_a.*", ""} {
		if got, err := st.LastAttempt(ctx, id); got != nil || err != nil {
			t.Errorf("LastAttempt(%q) = %v, %v; want nil, nil", id, got, err)
		}
	}
	// A record as the build before wrote it.
	old := attemptRecord("ep_b", "eee0000000000000", 2, "", time.Now(), webhook.Result{Status: 503})
	data, err := proto.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.js.Publish(ctx, attemptsPrefix+".ep_b.eee", data); err != nil {
		t.Fatal(err)
	}
	if got, err := st.LastAttempt(ctx, "ep_b"); err != nil || !proto.Equal(got, old) {
		t.Errorf("LastAttempt(ep_b) after an old-layout record = %v, %v; want %v", got, err, old)
	}
}

// TestStoreSyncs: the store tells its Syncer (the log's shared sync with
// fsync: always) the streams whose writes wait; every change of an
// endpoint waits for a sync once the change is written, and a failed sync
// fails the change.
func TestStoreSyncs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var syncs []string // what the bucket held for ep_1 at each sync
	var fail error
	var st *Store
	syncer := &syncFunc{sync: func(context.Context) error {
		url, err := storedURL(ctx, st.js)
		if err != nil {
			url = "none"
		}
		syncs = append(syncs, url)
		return fail
	}}
	st, _ = openTestStoreWith(t, StoreOptions{Plain: true, Max: 10, AttemptsRetention: time.Hour, DeadLetterRetention: time.Hour,
		Syncer: syncer})
	ep := &Endpoint{Endpoint: &hookstreamv1.Endpoint{Id: "ep_1", Url: "https://example.com/a"},
		Secrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, Expires: []time.Time{{}}}
	if err := st.Create(ctx, ep); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Update(ctx, "ep_1", func(e *Endpoint) error { e.Url = "https://example.com/b"; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx, "ep_1"); err != nil {
		t.Fatal(err)
	}
	if want := []string{"KV_" + endpointsBucket, deadStream, redriveStream}; !slices.Equal(syncer.streams, want) {
		t.Errorf("streams to sync: %q, want %q", syncer.streams, want)
	}
	want := []string{"https://example.com/a", "https://example.com/b", "none"}
	if diff := cmp.Diff(want, syncs); diff != "" {
		t.Fatalf("the bucket at each sync (-want +got):\n%s", diff)
	}
	fail = errors.New("EIO")
	if err := st.Create(ctx, &Endpoint{Endpoint: &hookstreamv1.Endpoint{Id: "ep_2", Url: "https://example.com/c"},
		Secrets: ep.Secrets, Expires: ep.Expires}); !errors.Is(err, fail) {
		t.Fatalf("Create with a failed sync: %v, want its error", err)
	}
}

// syncFunc is a Syncer that runs sync and remembers the streams it was
// told.
type syncFunc struct {
	streams []string
	sync    func(context.Context) error
}

func (s *syncFunc) SyncStreams(streams ...string)  { s.streams = append(s.streams, streams...) }
func (s *syncFunc) Sync(ctx context.Context) error { return s.sync(ctx) }

// storedURL reads ep_1's URL from the endpoints bucket directly.
func storedURL(ctx context.Context, js jetstream.JetStream) (string, error) {
	kv, err := js.KeyValue(ctx, endpointsBucket)
	if err != nil {
		return "", err
	}
	e, err := kv.Get(ctx, "ep_1")
	if err != nil {
		return "", err
	}
	var r record
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return "", err
	}
	pub := &hookstreamv1.Endpoint{}
	if err := protojson.Unmarshal(r.Endpoint, pub); err != nil {
		return "", err
	}
	return pub.GetUrl(), nil
}
