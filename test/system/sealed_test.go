package system

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// TestSealedEndpointIsReported: a server started with a delivery key
// other than the one that sealed an endpoint's secret cannot deliver it;
// with the embedded log no other replica can either, so it says so as an
// error and /healthz reports it, instead of the endpoint stopping without
// a sign.
func TestSealedEndpointIsReported(t *testing.T) {
	t.Parallel()
	key := func() string {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		return base64.StdEncoding.EncodeToString(b)
	}
	yaml := func(k string) string {
		return fmt.Sprintf("delivery:\n  allow_http: true\n  allow_networks: [\"127.0.0.0/8\"]\n  secret_key: %q\n", k)
	}
	dir := t.TempDir()
	a := startServer(t, testConfig(t, dir, yaml(key())))
	ep := createEndpoint(t, a, &hookstreamv1.Endpoint{Url: "http://127.0.0.1:9/sealed"})
	a.stop()

	b := startServer(t, testConfig(t, dir, yaml(key())))
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := httpDo(t, http.MethodGet, b.base+"/healthz", "")
		if code == http.StatusOK && strings.Contains(body, `"degraded"`) && strings.Contains(body, "1 endpoint(s) not delivered here") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz after a start with another delivery key: %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if logs := b.logs.String(); !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "sealed with a key this server does not have") ||
		!strings.Contains(logs, ep.GetId()) {
		t.Errorf("no error line names the endpoint sealed with another key:\n%s", logs)
	}
}
