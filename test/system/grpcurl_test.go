package system

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// grpcurlBinary builds grpcurl at the version pinned in tools/grpcurl/go.mod
// once per test run.
func grpcurlBinary(t *testing.T) string {
	t.Helper()
	return goBinary(t, "grpcurl", "-modfile=tools/grpcurl/go.mod", "github.com/fullstorydev/grpcurl/cmd/grpcurl")
}

// TestGrpcurl runs the README's grpcurl commands, as a user pastes them,
// against a server: reflection lists the services, GetEvent with
// include_raw, Subscribe from the beginning and from a cursor, and
// CreateEndpoint with an admin token.
func TestGrpcurl(t *testing.T) {
	t.Parallel()
	bin := grpcurlBinary(t)
	s := startServer(t, testConfig(t, t.TempDir(), deliveryYAML))
	addr := s.app.GRPCAddr()
	run := func(token string, args ...string) (string, error) {
		args = append([]string{"-plaintext", "-H", "authorization: Bearer " + token}, args...)
		cmd := exec.Command(bin, args...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		if err != nil {
			err = fmt.Errorf("%v: %s", err, errb.String())
		}
		return out.String(), err
	}

	out, err := run(readToken, addr, "list")
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range []string{"hookstream.v1.EventService", "hookstream.v1.EndpointService", "hookstream.v1.IngestService", "hookstream.v1.QuarantineService"} {
		if !strings.Contains(out, svc) {
			t.Errorf("grpcurl list: %q lacks %s", out, svc)
		}
	}

	resp := s.post("/v1/webhooks/pipedrive", fixture(t, "pipedrive", "v2_change_deal"), pipedriveAuth(pdPassword))
	id, _ := resp.body["event_id"].(string)
	if resp.code != 200 || id == "" {
		t.Fatalf("webhook: %d %v", resp.code, resp.body)
	}

	// GetEvent, with the raw request.
	out, err = run(readToken, "-d", `{"id": "`+id+`", "include_raw": true}`, addr, "hookstream.v1.EventService/GetEvent")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Event struct {
			ID, Source, Type string
			Raw              struct{ BodyText string }
		}
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || got.Event.ID != id || got.Event.Source != "pipedrive" || got.Event.Type != "deal.updated" ||
		!strings.Contains(got.Event.Raw.BodyText, `"entity"`) {
		t.Errorf("GetEvent: %v\n%s", err, out)
	}

	// Subscribe from the beginning and, as the README's resume line, after a
	// cursor; -max-time ends the stream (exit status 4: deadline).
	out, _ = run(readToken, "-max-time", "3", "-d", `{"position": "START_POSITION_BEGINNING"}`, addr, "hookstream.v1.EventService/Subscribe")
	if !strings.Contains(out, `"id": "`+id+`"`) || !strings.Contains(out, `"cursor": "1"`) {
		t.Errorf("Subscribe from the beginning:\n%s", out)
	}
	s.post("/v1/webhooks/pipedrive", fixture(t, "pipedrive", "v2_create_person"), pipedriveAuth(pdPassword))
	out, _ = run(readToken, "-max-time", "3", "-d", `{"after_cursor": "1"}`, addr, "hookstream.v1.EventService/Subscribe")
	if strings.Contains(out, `"id": "`+id+`"`) || !strings.Contains(out, `"type": "person.created"`) {
		t.Errorf("Subscribe after cursor 1:\n%s", out)
	}

	// CreateEndpoint needs the admin scope.
	rc := newReceiver(t, nil)
	body := `{"endpoint": {"url": "` + rc.srv.URL + `/hook", "filter": "event.type == \"person.created\""}}`
	if _, err := run(readToken, "-d", body, addr, "hookstream.v1.EndpointService/CreateEndpoint"); err == nil || !strings.Contains(err.Error(), "PermissionDenied") {
		t.Errorf("CreateEndpoint with a read token: %v", err)
	}
	out, err = run(adminToken, "-d", body, addr, "hookstream.v1.EndpointService/CreateEndpoint")
	if err != nil || !strings.Contains(out, `"secret": "whsec_`) {
		t.Fatalf("CreateEndpoint: %v\n%s", err, out)
	}
}
