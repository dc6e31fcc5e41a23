package system

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// The review's case: the log's storage is damaged while the service is
// stopped. At the next start the loss is reported (error log, /healthz,
// metric), a consumer resuming from its stored cursor receives the events
// stored after the restart instead of silence, and a cursor past the log's
// end is refused with a clear error.
func TestDamagedLogEndToEnd(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, testConfig(t, dir, ""))
	post := func(s *server, i int) string {
		body := fmt.Sprintf(`{"activity": {"_id": "act-%05d", "created_at": "2024-06-11T01:00:00Z", "type": "note:created", "note_content": "%s"},
			"lead": {"_id": "lead-1", "name": "L"}, "handshake_key": %q}`, i, strings.Repeat("n", 300), cpHandshake)
		resp := s.post("/v1/webhooks/clinchpad", []byte(body), nil)
		if resp.code != http.StatusOK {
			t.Fatalf("post %d: %d %v", i, resp.code, resp.body)
		}
		return resp.body["event_id"].(string)
	}
	const n = 400
	for i := range n {
		post(s, i)
	}
	sub := s.subscribe(&hookstreamv1.SubscribeRequest{Start: &hookstreamv1.SubscribeRequest_Position{Position: hookstreamv1.StartPosition_START_POSITION_BEGINNING}})
	var cursor string
	for range n {
		cursor = sub.next().GetCursor()
	}
	sub.cancel()
	s.stop()

	blks, _ := filepath.Glob(filepath.Join(dir, "jetstream", "*", "streams", "HOOKSTREAM_EVENTS", "msgs", "*.blk"))
	if len(blks) == 0 {
		t.Fatal("no message blocks")
	}
	fi, err := os.Stat(blks[len(blks)-1])
	if err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, 4096)
	_, _ = rand.Read(junk)
	f, err := os.OpenFile(blks[len(blks)-1], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(junk, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	f.Close()

	s2 := startServer(t, testConfig(t, dir, ""))
	if logs := s2.logs.String(); !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "event log damaged") {
		t.Errorf("no error log about the damage:\n%s", logs)
	}
	_, health := httpDo(t, http.MethodGet, s2.base+"/healthz", "")
	if !strings.Contains(health, `"degraded"`) || !strings.Contains(health, "lost") {
		t.Errorf("/healthz after the damage: %s", health)
	}
	if _, metrics := httpDo(t, http.MethodGet, s2.base+"/metrics", readToken); !strings.Contains(metrics, "hookstream_log_lost_events ") ||
		strings.Contains(metrics, "hookstream_log_lost_events 0\n") {
		t.Errorf("hookstream_log_lost_events missing or 0")
	}

	resumed := s2.subscribe(&hookstreamv1.SubscribeRequest{Start: &hookstreamv1.SubscribeRequest_AfterCursor{AfterCursor: cursor}})
	fresh := post(s2, n+1)
	if got := resumed.next().GetEvent().GetId(); got != fresh {
		t.Errorf("resumed consumer got %s, want the new event %s", got, fresh)
	}

	past, err := s2.events().Subscribe(context.Background(), &hookstreamv1.SubscribeRequest{Start: &hookstreamv1.SubscribeRequest_AfterCursor{AfterCursor: "99999999"}})
	if err == nil {
		_, err = past.Recv()
	}
	if status.Code(err) != codes.OutOfRange || !strings.Contains(err.Error(), "past the log's last position") {
		t.Errorf("subscribe past the end: %v, want OUT_OF_RANGE", err)
	}
	if _, err := s2.events().ListEvents(context.Background(), &hookstreamv1.ListEventsRequest{PageToken: "99999999"}); status.Code(err) != codes.OutOfRange ||
		!strings.Contains(err.Error(), "page_token 99999999 is past the log's end") {
		t.Errorf("list past the end: %v, want OUT_OF_RANGE naming the token", err)
	}
}
