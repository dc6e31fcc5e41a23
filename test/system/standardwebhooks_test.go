package system

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// nodeReceiver is test/receivers/standardwebhooks.mjs: the official
// standardwebhooks npm package verifying what hookstream sends.
type nodeReceiver struct {
	url  string
	mu   sync.Mutex
	seen map[string][]nodeVerdict // by webhook-id, in arrival order
}

type nodeVerdict struct {
	ID       string `json:"id"`
	Verified bool   `json:"verified"`
	Secret   int    `json:"secret"`
	Error    string `json:"error"`
}

// nodeScript is a command running a script of the repo (path from its
// root) with node, once the npm package it needs is installed; without
// them the test fails (CI installs both), it does not skip.
func nodeScript(t *testing.T, pkg, script string, args ...string) *exec.Cmd {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is not installed; CI installs it (scripts/test.sh runs npm ci)")
	}
	root, _ := filepath.Abs("../..")
	if _, err := os.Stat(filepath.Join(root, "node_modules", pkg)); err != nil {
		t.Fatalf("node_modules/%s is missing: run npm ci", pkg)
	}
	cmd := exec.Command(node, append([]string{filepath.Join(root, script)}, args...)...)
	cmd.Stderr = os.Stderr
	return cmd
}

func startNodeReceiver(t *testing.T) *nodeReceiver {
	t.Helper()
	cmd := nodeScript(t, "standardwebhooks", "test/receivers/standardwebhooks.mjs")
	cmd.Env = append(os.Environ(), "EXIT_WITH_STDIN=1")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stdin.Close(); _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() {
		t.Fatal("the node receiver printed nothing")
	}
	var first struct{ Port int }
	if err := json.Unmarshal(lines.Bytes(), &first); err != nil || first.Port == 0 {
		t.Fatalf("node receiver said %q", lines.Text())
	}
	rc := &nodeReceiver{url: fmt.Sprintf("http://127.0.0.1:%d", first.Port), seen: map[string][]nodeVerdict{}}
	go func() {
		for lines.Scan() {
			var v nodeVerdict
			if json.Unmarshal(lines.Bytes(), &v) == nil {
				rc.mu.Lock()
				rc.seen[v.ID] = append(rc.seen[v.ID], v)
				rc.mu.Unlock()
			}
		}
	}()
	return rc
}

func (rc *nodeReceiver) setSecrets(t *testing.T, secrets ...string) {
	t.Helper()
	body, _ := json.Marshal(map[string][]string{"secrets": secrets})
	resp, err := http.Post(rc.url+"/_secrets", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("setting secrets: %d", resp.StatusCode)
	}
}

// waitVerified waits until each id was verified, and returns the verdicts.
func (rc *nodeReceiver) waitVerified(t *testing.T, ids []string) map[string][]nodeVerdict {
	t.Helper()
	waitUntil(t, 15*time.Second, "the standardwebhooks receiver to verify every delivery", func() bool {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		for _, id := range ids {
			vs := rc.seen[id]
			if len(vs) == 0 || !vs[len(vs)-1].Verified {
				return false
			}
		}
		return true
	})
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := map[string][]nodeVerdict{}
	for _, id := range ids {
		out[id] = append([]nodeVerdict(nil), rc.seen[id]...)
	}
	return out
}

// TestDeliveryVerifiedByStandardWebhooks: the official library verifies
// every delivery, before and through secret rotations: during the overlap
// both the new and the old secret verify; a rotation without overlap makes
// the old secret fail at once, and the retry verifies with the new one.
func TestDeliveryVerifiedByStandardWebhooks(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, t.TempDir(), deliveryYAML))
	rc := startNodeReceiver(t)
	ctx := context.Background()
	for _, format := range []hookstreamv1.EndpointFormat{hookstreamv1.EndpointFormat_ENDPOINT_FORMAT_EVENT_JSON,
		hookstreamv1.EndpointFormat_ENDPOINT_FORMAT_CLOUDEVENTS} {
		ep := createEndpoint(t, s, &hookstreamv1.Endpoint{Url: rc.url + "/hook", Format: format, Filter: `event.subject.id == "` + format.String() + `"`})
		first := ep.GetSecret()
		rc.setSecrets(t, first)
		ids := postLeadNotes(t, s, "sw1", []string{format.String()}, 3)
		for id, vs := range rc.waitVerified(t, ids) {
			if len(vs) != 1 {
				t.Errorf("%s: %d requests for %s, want 1", format, len(vs), id)
			}
		}

		rot, err := s.endpoints().RotateEndpointSecret(ctx, &hookstreamv1.RotateEndpointSecretRequest{Id: ep.GetId()})
		if err != nil {
			t.Fatal(err)
		}
		second := rot.GetEndpoint().GetSecret()
		rc.setSecrets(t, second) // a receiver that switched already
		rc.waitVerified(t, postLeadNotes(t, s, "sw2", []string{format.String()}, 2))
		rc.setSecrets(t, first) // one that did not yet
		rc.waitVerified(t, postLeadNotes(t, s, "sw3", []string{format.String()}, 2))

		// Without overlap the old secret stops at once.
		rot, err = s.endpoints().RotateEndpointSecret(ctx, &hookstreamv1.RotateEndpointSecretRequest{Id: ep.GetId(), Overlap: durationpb.New(0)})
		if err != nil {
			t.Fatal(err)
		}
		third := rot.GetEndpoint().GetSecret()
		time.Sleep(300 * time.Millisecond) // the worker reloads the endpoint
		rc.setSecrets(t, second)
		late := postLeadNotes(t, s, "sw4", []string{format.String()}, 1)
		waitUntil(t, 10*time.Second, "a refused delivery", func() bool {
			rc.mu.Lock()
			defer rc.mu.Unlock()
			return len(rc.seen[late[0]]) > 0
		})
		rc.setSecrets(t, third)
		vs := rc.waitVerified(t, late)[late[0]]
		if vs[0].Verified {
			t.Errorf("%s: the secret rotated out without overlap still verified", format)
		}
	}
}
