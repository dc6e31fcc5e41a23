package system

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/normalize/pipedrive"
)

// pipedriveSDK runs test/pipedrive/sdk.mjs: Pipedrive's official Node SDK
// (WebhooksApi) pointed at hookstream with basePath.
func pipedriveSDK(t *testing.T, s *server, token string, args ...string) (int, map[string]any) {
	t.Helper()
	cmd := nodeScript(t, "pipedrive", "test/pipedrive/sdk.mjs", append([]string{s.base + "/api/v1", token}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pipedrive SDK %v: %v", args, err)
	}
	var res struct {
		Status int            `json:"status"`
		Body   map[string]any `json:"body"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("pipedrive SDK said %q", out)
	}
	return res.Status, res.Body
}

// postPipedrive posts a Pipedrive fixture to the pipedrive source and
// returns the body as sent.
func postPipedrive(t *testing.T, s *server, fixture string) []byte {
	t.Helper()
	body, err := os.ReadFile(filepath.Join(testdataRoot, "pipedrive", "testdata", fixture+".json"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, s.base+"/v1/webhooks/pipedrive", bytes.NewReader(body))
	req.SetBasicAuth("pipedrive", pdPassword)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("ingest %s: %d", fixture, resp.StatusCode)
	}
	return body
}

// TestPipedriveCompatWithSDK: code written against Pipedrive's SDK
// subscribes through hookstream by changing basePath, and gets exactly the
// matching Pipedrive webhooks, their bodies as Pipedrive sent them, with
// its Basic auth.
func TestPipedriveCompatWithSDK(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, t.TempDir(), deliveryYAML))
	changes := newReceiver(t, nil)
	everything := newReceiver(t, nil)

	status, body := pipedriveSDK(t, s, adminToken, "add", `{"subscription_url": "`+changes.srv.URL+`/pd", "event_action": "change",
		"event_object": "deal", "name": "deal changes", "user_id": 7, "http_auth_user": "pd-user", "http_auth_password": "pd-pass-123"}`)
	if status != http.StatusCreated || body["success"] != true {
		t.Fatalf("addWebhook: %d %v", status, body)
	}
	hook := body["data"].(map[string]any)
	id := int64(hook["id"].(float64))
	for k, want := range map[string]any{"event_action": "change", "event_object": "deal", "is_active": 1.0, "version": "2.0",
		"http_auth_user": "pd-user", "http_auth_password": nil, "name": "deal changes", "user_id": 7.0, "type": "general",
		"subscription_url": changes.srv.URL + "/pd"} {
		if hook[k] != want {
			t.Errorf("addWebhook data.%s = %v, want %v", k, hook[k], want)
		}
	}
	status, body = pipedriveSDK(t, s, adminToken, "add", `{"subscription_url": "`+everything.srv.URL+`", "event_action": "*", "event_object": "*", "name": "all"}`)
	if status != http.StatusCreated {
		t.Fatalf("addWebhook */*: %d %v", status, body)
	}
	allID := int64(body["data"].(map[string]any)["id"].(float64))

	status, body = pipedriveSDK(t, s, readToken, "list")
	if status != http.StatusOK || len(body["data"].([]any)) != 2 {
		t.Fatalf("getWebhooks: %d %v", status, body)
	}

	sent := map[string][]byte{}
	for _, f := range []string{"v2_change_deal", "v2_create_deal_field", "v2_create_person", "v1_updated_deal", "v2_delete_deal", "v1_added_person"} {
		sent[f] = postPipedrive(t, s, f)
	}
	// change + deal: v2's change.deal and v1's updated.deal.
	waitUntil(t, 10*time.Second, "the deal changes", func() bool { return len(changes.requests()) >= 2 })
	waitUntil(t, 10*time.Second, "every event at */*", func() bool { return len(everything.requests()) >= len(sent) })
	time.Sleep(300 * time.Millisecond) // anything extra would have come
	got := changes.requests()
	if len(got) != 2 {
		t.Fatalf("change/deal got %d requests, want 2", len(got))
	}
	// Each matching webhook once, its body as sent but for meta.webhook_id,
	// which names the webhook that delivers it, and the attempt counter.
	hookID := strconv.FormatInt(id, 10)
	if !sameBodies(got, asDelivered(sent["v2_change_deal"], hookID), asDelivered(sent["v1_updated_deal"], hookID)) {
		t.Errorf("change/deal did not get the two matching webhooks as sent, once each")
	}
	for _, d := range got {
		var b struct {
			Meta struct {
				WebhookID string `json:"webhook_id"`
				Attempt   *int   `json:"attempt"`
			} `json:"meta"`
			Retry *int `json:"retry"`
		}
		if err := json.Unmarshal(d.body, &b); err != nil {
			t.Fatal(err)
		}
		if b.Meta.WebhookID != hookID {
			t.Errorf("delivered meta.webhook_id %q, want the webhook's id %s", b.Meta.WebhookID, hookID)
		}
		if (b.Meta.Attempt == nil || *b.Meta.Attempt != 1) && (b.Retry == nil || *b.Retry != 0) {
			t.Errorf("first delivery without v2 meta.attempt 1 or v1 retry 0: %s", d.body)
		}
	}
	for _, d := range got {
		user, pass, ok := (&http.Request{Header: d.h}).BasicAuth()
		if !ok || user != "pd-user" || pass != "pd-pass-123" {
			t.Errorf("delivery without the webhook's Basic auth: %v", d.h.Get("Authorization") != "")
		}
		if d.h.Get("Content-Type") != "application/json" {
			t.Errorf("content type %q", d.h.Get("Content-Type"))
		}
	}
	var all [][]byte
	for _, b := range sent {
		all = append(all, asDelivered(b, strconv.FormatInt(allID, 10)))
	}
	if !sameBodies(everything.requests(), all...) {
		t.Errorf("*/* did not get every webhook as sent, once each (%d requests, want %d)", len(everything.requests()), len(sent))
	}

	// Deleted: nothing more arrives.
	status, body = pipedriveSDK(t, s, adminToken, "delete", strconv.FormatInt(id, 10))
	if status != http.StatusOK || body["success"] != true {
		t.Fatalf("deleteWebhook: %d %v", status, body)
	}
	if status, _ = pipedriveSDK(t, s, adminToken, "delete", strconv.FormatInt(id, 10)); status != http.StatusNotFound {
		t.Errorf("deleting again: %d", status)
	}
	time.Sleep(300 * time.Millisecond)
	postPipedrive(t, s, "v2_change_deal_custom_fields")
	waitUntil(t, 10*time.Second, "the */* webhook to get the last one", func() bool { return len(everything.requests()) == len(sent)+1 })
	time.Sleep(300 * time.Millisecond)
	if n := len(changes.requests()); n != 2 {
		t.Errorf("a deleted webhook got %d more requests", n-2)
	}
	if status, _ = pipedriveSDK(t, s, adminToken, "delete", strconv.FormatInt(allID, 10)); status != http.StatusOK {
		t.Errorf("deleteWebhook */*: %d", status)
	}
}

// asDelivered is a Pipedrive body as the compatible webhook hookID sends
// it on a first attempt (pipedrive.AsDelivered, tested on its own).
func asDelivered(body []byte, hookID string) []byte {
	return pipedrive.AsDelivered(body, hookID, 1)
}

// sameBodies reports whether the deliveries' bodies are want, each once,
// in any order.
func sameBodies(got []delivered, want ...[]byte) bool {
	if len(got) != len(want) {
		return false
	}
	used := make([]bool, len(want))
next:
	for _, d := range got {
		for i, w := range want {
			if !used[i] && bytes.Equal(d.body, w) {
				used[i] = true
				continue next
			}
		}
		return false
	}
	return true
}

// pipedriveCall sends one request to the compatibility API as a client
// other than the SDK would (curl, an older SDK) and decodes the answer.
func pipedriveCall(t *testing.T, method, url string, header map[string]string, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: %d, not JSON: %v", method, url, resp.StatusCode, err)
	}
	return resp.StatusCode, out
}

// TestPipedriveCompatErrors: bad requests get Pipedrive-shaped errors.
func TestPipedriveCompatErrors(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, t.TempDir(), deliveryYAML))
	for name, c := range map[string]struct {
		token, body string
		status      int
		field       string
	}{
		"missing subscription_url": {adminToken, `{"event_action": "change", "event_object": "deal", "name": "x"}`, 400, "subscription_url"},
		"unknown action":           {adminToken, `{"subscription_url": "http://127.0.0.1:1/x", "event_action": "renamed", "event_object": "deal", "name": "x"}`, 400, "event_action"},
		"bad object":               {adminToken, `{"subscription_url": "http://127.0.0.1:1/x", "event_action": "change", "event_object": "deal!", "name": "x"}`, 400, "event_object"},
		"bad user_id":              {adminToken, `{"subscription_url": "http://127.0.0.1:1/x", "event_action": "change", "event_object": "deal", "name": "x", "user_id": "seven"}`, 400, "user_id"},
		"bad version":              {adminToken, `{"subscription_url": "http://127.0.0.1:1/x", "event_action": "change", "event_object": "deal", "name": "x", "version": "3.0"}`, 400, "version"},
		"colon in http_auth_user":  {adminToken, `{"subscription_url": "http://127.0.0.1:1/x", "event_action": "change", "event_object": "deal", "name": "x", "http_auth_user": "a:b"}`, 400, "http_auth_user"},
		"long http_auth_user":      {adminToken, `{"subscription_url": "http://127.0.0.1:1/x", "event_action": "change", "event_object": "deal", "name": "x", "http_auth_user": "` + strings.Repeat("u", 300) + `"}`, 400, "http_auth_user"},
		"ftp subscription_url":     {adminToken, `{"subscription_url": "ftp://127.0.0.1/x", "event_action": "change", "event_object": "deal", "name": "x"}`, 400, "subscription_url"},
		"wrong token":              {"not-a-token-0123456789", `{"subscription_url": "http://127.0.0.1:1/x", "event_action": "change", "event_object": "deal", "name": "x"}`, 401, ""},
		"wrong token, bad body":    {"not-a-token-0123456789", `{"event_action": "renamed"}`, 401, ""},
		"read token":               {readToken, `{"subscription_url": "http://127.0.0.1:1/x", "event_action": "change", "event_object": "deal", "name": "x"}`, 403, ""},
	} {
		status, body := pipedriveSDK(t, s, c.token, "add", c.body)
		if status != c.status || body["success"] != false {
			t.Errorf("%s: %d %v, want %d", name, status, body, c.status)
			continue
		}
		if c.field != "" {
			errs, _ := body["errors"].(map[string]any)
			if _, ok := errs[c.field]; !ok || len(errs) != 1 || strings.Contains(fmt.Sprint(body["error"]), "endpoint.") {
				t.Errorf("%s: errors %v (%v) do not name %s alone, in Pipedrive's words", name, body["errors"], body["error"], c.field)
			}
		}
		if c.status == 401 && (body["error"] != "unauthorized access" || body["errorCode"] != 401.0) {
			t.Errorf("%s: %v is not Pipedrive's 401", name, body)
		}
	}
	if status, body := pipedriveSDK(t, s, adminToken, "delete", "12345"); status != 404 || !strings.Contains(strings.ToLower(body["error"].(string)), "not found") {
		t.Errorf("delete unknown: %d %v", status, body)
	}
	// A name is at most 255 characters, not bytes.
	for n, want := range map[int]int{255: http.StatusCreated, 256: http.StatusBadRequest} {
		status, body := pipedriveCall(t, http.MethodPost, s.base+"/api/v1/webhooks", map[string]string{"x-api-token": adminToken, "Content-Type": "application/json"},
			`{"subscription_url": "http://127.0.0.1:1/x", "event_action": "change", "event_object": "deal", "name": "`+strings.Repeat("é", n)+`"}`)
		if status != want {
			t.Errorf("a name of %d two-byte characters: %d %v, want %d", n, status, body, want)
		}
	}
	// A body over the API's cap is refused before anything reads it,
	// token or not, in Pipedrive's shape.
	if status, body := pipedriveCall(t, http.MethodPost, s.base+"/api/v1/webhooks", map[string]string{"x-api-token": "not-a-token-0123456789", "Content-Type": "application/json"},
		`{"name": "`+strings.Repeat("x", 3<<20)+`"}`); status != http.StatusRequestEntityTooLarge || body["success"] != false || !strings.Contains(fmt.Sprint(body["error"]), "exceeds the limit") || body["errorCode"] != 413.0 {
		t.Errorf("a 3 MB body: %d %v, want Pipedrive's shape of a 413", status, body)
	}
	// Without a token, or with a wrong one, every route is 401 whatever
	// else is wrong.
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/api/v1/webhooks"},
		{http.MethodPost, "/api/v1/webhooks"},
		{http.MethodDelete, "/api/v1/webhooks/12345"},
		{http.MethodDelete, "/api/v1/webhooks/not-an-id"},
	} {
		// A token with a control character cannot be one (not a 503).
		for _, h := range []map[string]string{nil, {"x-api-token": "not-a-token-0123456789"}, {"x-api-token": "not\ta-token"}} {
			status, body := pipedriveCall(t, c.method, s.base+c.path, h, `{}`)
			if status != 401 || body["success"] != false || body["error"] != "unauthorized access" || body["errorCode"] != 401.0 {
				t.Errorf("%s %s with %q: %d %v, want Pipedrive's 401", c.method, c.path, h, status, body)
			}
		}
		if status, body := pipedriveCall(t, c.method, s.base+c.path+"?api_token=x%0Ay", nil, `{}`); status != 401 || body["error"] != "unauthorized access" {
			t.Errorf("%s %s?api_token=x%%0Ay: %d %v, want Pipedrive's 401", c.method, c.path, status, body)
		}
	}
	// ?source= narrows a webhook to one Pipedrive source; an unknown one is
	// refused.
	req, _ := http.NewRequest(http.MethodPost, s.base+"/api/v1/webhooks?source=nope", strings.NewReader(
		`{"subscription_url": "http://127.0.0.1:1/x", "event_action": "change", "event_object": "deal", "name": "x"}`))
	req.Header.Set("x-api-token", adminToken)
	req.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 400 {
		t.Errorf("unknown source: %v %v", resp, err)
	} else {
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if !strings.Contains(string(body), `\"nope\" is not a configured Pipedrive source (configured: pipedrive, pipedrive-us)`) {
			t.Errorf("unknown source: %s, want the value sent and the sources configured", body)
		}
	}
	// A form body, as Pipedrive takes too; and JSON under curl -d's default
	// form content type.
	for name, c := range map[string]struct{ ct, body string }{
		"form":            {"application/x-www-form-urlencoded", "subscription_url=http%3A%2F%2F127.0.0.1%3A1%2Fx&event_action=added&event_object=person&name=f&user_id=3"},
		"JSON as curl -d": {"application/x-www-form-urlencoded", `{"subscription_url": "http://127.0.0.1:1/x", "event_action": "added", "event_object": "person", "name": "j"}`},
	} {
		req, _ := http.NewRequest(http.MethodPost, s.base+"/api/v1/webhooks", strings.NewReader(c.body))
		req.Header.Set("x-api-token", adminToken)
		req.Header.Set("Content-Type", c.ct)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusCreated || out["data"].(map[string]any)["event_object"] != "person" {
			t.Errorf("%s body: %d %v", name, resp.StatusCode, out)
		}
	}
	// The api_token query parameter works as well as the header, and so
	// does a bearer token (Pipedrive's OAuth).
	if status, body := pipedriveCall(t, http.MethodGet, s.base+"/api/v1/webhooks?api_token="+readToken, nil, ""); status != 200 || body["success"] != true {
		t.Errorf("api_token query: %d %v", status, body)
	}
	if status, body := pipedriveCall(t, http.MethodGet, s.base+"/api/v1/webhooks", map[string]string{"Authorization": "Bearer " + readToken}, ""); status != 200 || body["success"] != true {
		t.Errorf("bearer token: %d %v", status, body)
	}
	// As an older SDK sends it (shared/seeds/002): a form body without a
	// name, user_id a string. Pipedrive's current API wants a name; one
	// is made up from the event rather than refusing such clients.
	status, body := pipedriveCall(t, http.MethodPost, s.base+"/api/v1/webhooks?api_token="+adminToken,
		map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
		"subscription_url=http%3A%2F%2F127.0.0.1%3A1%2Fold&event_action=updated&event_object=deal&user_id=56")
	if data, _ := body["data"].(map[string]any); status != 201 || data["name"] != "updated.deal" || data["user_id"] != 56.0 || data["version"] != "2.0" {
		t.Errorf("older SDK's form without a name: %d %v", status, body)
	}
	status, body = pipedriveCall(t, http.MethodPost, s.base+"/api/v1/webhooks",
		map[string]string{"x-api-token": adminToken, "Content-Type": "application/json"},
		`{"subscription_url": "http://127.0.0.1:1/v1", "event_action": "added", "event_object": "persons", "user_id": "9", "version": "1.0"}`)
	if data, _ := body["data"].(map[string]any); status != 201 || data["name"] != "added.persons" || data["user_id"] != 9.0 || data["version"] != "1.0" {
		t.Errorf("JSON with user_id a string, no name, version 1.0: %d %v", status, body)
	}
}

// TestPipedriveCompatOneSource: ?source= limits a webhook to one source.
func TestPipedriveCompatOneSource(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, t.TempDir(), deliveryYAML))
	rc := newReceiver(t, nil)
	req, _ := http.NewRequest(http.MethodPost, s.base+"/api/v1/webhooks?source=pipedrive-us", strings.NewReader(
		`{"subscription_url": "`+rc.srv.URL+`", "event_action": "*", "event_object": "*", "name": "us only"}`))
	req.Header.Set("x-api-token", adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %v %v", resp, err)
	}
	var created struct {
		Data struct {
			ID int64 `json:"id"`
		} `json:"data"`
	}
	err = json.NewDecoder(resp.Body).Decode(&created)
	_ = resp.Body.Close()
	if err != nil || created.Data.ID == 0 {
		t.Fatalf("create: no webhook id (%v)", err)
	}
	postPipedrive(t, s, "v2_change_deal") // to source pipedrive: not for this webhook
	body, err := os.ReadFile(filepath.Join(testdataRoot, "pipedrive", "testdata", "v2_create_person.json"))
	if err != nil {
		t.Fatal(err)
	}
	us, _ := http.NewRequest(http.MethodPost, s.base+"/v1/webhooks/pipedrive-us", bytes.NewReader(body))
	us.SetBasicAuth("us", pdPassword+"-us")
	if resp, err := http.DefaultClient.Do(us); err != nil || resp.StatusCode != 200 {
		t.Fatalf("ingest to pipedrive-us: %v %v", resp, err)
	} else {
		_ = resp.Body.Close()
	}
	waitUntil(t, 10*time.Second, "the pipedrive-us event", func() bool { return len(rc.requests()) >= 1 })
	time.Sleep(300 * time.Millisecond)
	got := rc.requests()
	if len(got) != 1 || !bytes.Equal(got[0].body, asDelivered(body, strconv.FormatInt(created.Data.ID, 10))) {
		t.Errorf("a webhook of pipedrive-us got %d requests (want the one event of that source)", len(got))
	}
}

// TestPipedriveCompatDeadLetterAndRedrive: a compatibility webhook has the
// outbound endpoints' retries, dead letters and redrive, and every attempt
// carries Pipedrive's body as received, with the webhook's own id and the
// attempt's number, and the webhook's Basic auth.
func TestPipedriveCompatDeadLetterAndRedrive(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, t.TempDir(), deliveryYAML))
	rc, fail := switchable(t, 503)
	status, body := pipedriveCall(t, http.MethodPost, s.base+"/api/v1/webhooks", map[string]string{"x-api-token": adminToken, "Content-Type": "application/json"},
		`{"subscription_url": "`+rc.srv.URL+`", "event_action": "change", "event_object": "deal", "name": "flaky", "http_auth_user": "u", "http_auth_password": "p-123"}`)
	if status != http.StatusCreated {
		t.Fatalf("create: %d %v", status, body)
	}
	pdID := int64(body["data"].(map[string]any)["id"].(float64))
	ctx := context.Background()
	eps, err := s.endpoints().ListEndpoints(ctx, &hookstreamv1.ListEndpointsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var epID string
	for _, ep := range eps.GetEndpoints() {
		if ep.GetPipedrive().GetId() == pdID {
			epID = ep.GetId()
		}
	}
	if epID == "" {
		t.Fatalf("webhook %d is not among the endpoints", pdID)
	}
	sent := postPipedrive(t, s, "v2_change_deal")
	var dead []*hookstreamv1.DeadLetter
	waitUntil(t, 10*time.Second, "the dead letter", func() bool {
		resp, err := s.endpoints().ListDeadLetters(ctx, &hookstreamv1.ListDeadLettersRequest{EndpointId: epID})
		if err != nil {
			t.Fatal(err)
		}
		dead = resp.GetDeadLetters()
		return len(dead) == 1
	})
	if n := len(dead[0].GetAttempts()); n != 4 {
		t.Errorf("dead letter has %d attempts, want 4 (1 + 3 retries)", n)
	}
	fail(false)
	if r, err := s.endpoints().RedriveDeadLetters(ctx, &hookstreamv1.RedriveDeadLettersRequest{EndpointId: epID,
		Selector: &hookstreamv1.RedriveDeadLettersRequest_All{All: true}}); err != nil || r.GetRedriven() != 1 {
		t.Fatalf("redrive: %v %v", r, err)
	}
	rc.waitFor(t, []string{dead[0].GetEventId()}, 10*time.Second)
	got := rc.requests()
	if len(got) != 5 {
		t.Errorf("%d requests, want 4 failed and 1 redriven", len(got))
	}
	// Every attempt counts itself in meta.attempt, as Pipedrive's retries
	// do (the redriven one starts a new count), and names the webhook.
	for i, d := range got {
		user, pass, ok := (&http.Request{Header: d.h}).BasicAuth()
		var b struct {
			Meta struct {
				Attempt int `json:"attempt"`
			} `json:"meta"`
		}
		_ = json.Unmarshal(d.body, &b)
		if i < 4 && b.Meta.Attempt != i+1 || b.Meta.Attempt < 1 {
			t.Errorf("request %d: meta.attempt %d", i+1, b.Meta.Attempt)
		}
		if !bytes.Equal(d.body, pipedrive.AsDelivered(sent, strconv.FormatInt(pdID, 10), b.Meta.Attempt)) || !ok || user != "u" || pass != "p-123" {
			t.Errorf("request %d: not Pipedrive's body as sent (but for the webhook id and attempt) with the Basic auth (auth %v)", i+1, ok)
		}
	}
}

// TestPipedriveCompatLastDelivery: the fields Pipedrive's docs say to
// watch on GET /v1/webhooks are real, as Pipedrive's SDK reads them:
// last_delivery_time and last_http_status from the newest attempt (null
// when there was none; a null status with a time for an attempt without a
// response, Pipedrive's "Error"), and is_active, remove_time and
// remove_reason of a webhook disabled by 410 Gone.
func TestPipedriveCompatLastDelivery(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, t.TempDir(), deliveryYAML))
	ctx := context.Background()
	ok := newReceiver(t, nil)
	failing := newReceiver(t, func(*http.Request, int) int { return http.StatusInternalServerError })
	gone := newReceiver(t, func(*http.Request, int) int { return http.StatusGone })
	urls := map[string]string{"ok": ok.srv.URL, "failing": failing.srv.URL, "gone": gone.srv.URL,
		"refused": "http://127.0.0.1:" + strconv.Itoa(freePort(t)) + "/pd", "idle": ok.srv.URL + "/idle"}
	pdIDs := map[string]float64{}
	for name, u := range urls {
		object := "deal"
		if name == "idle" {
			object = "activity" // no activity event is sent
		}
		status, body := pipedriveCall(t, http.MethodPost, s.base+"/api/v1/webhooks", map[string]string{"x-api-token": adminToken, "Content-Type": "application/json"},
			`{"subscription_url": "`+u+`", "event_action": "*", "event_object": "`+object+`", "name": "`+name+`"}`)
		if status != http.StatusCreated {
			t.Fatalf("create %s: %d %v", name, status, body)
		}
		data := body["data"].(map[string]any)
		if data["last_delivery_time"] != nil || data["last_http_status"] != nil || data["remove_time"] != nil {
			t.Errorf("a new webhook shows a delivery or removal: %v", data)
		}
		pdIDs[name] = data["id"].(float64)
	}
	list, err := s.endpoints().ListEndpoints(ctx, &hookstreamv1.ListEndpointsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	epIDs := map[string]string{}
	for _, ep := range list.GetEndpoints() {
		epIDs[ep.GetPipedrive().GetName()] = ep.GetId()
	}

	before := time.Now()
	postPipedrive(t, s, "v2_change_deal")
	waitUntil(t, 10*time.Second, "the delivery", func() bool { return len(ok.requests()) == 1 })
	deadLettered(t, s, epIDs["failing"], 1)
	deadLettered(t, s, epIDs["refused"], 1)
	waitUntil(t, 10*time.Second, "the 410 webhook disabled, and every last attempt recorded", func() bool {
		for name, want := range map[string]int32{"ok": 204, "failing": 500, "refused": 0, "gone": 410} {
			resp, err := s.endpoints().GetEndpoint(ctx, &hookstreamv1.GetEndpointRequest{Id: epIDs[name]})
			if err != nil {
				t.Fatal(err)
			}
			ep := resp.GetEndpoint()
			if ep.GetLastAttemptTime() == nil || ep.GetLastAttemptStatusCode() != want ||
				(name == "gone") != (ep.GetState() == hookstreamv1.EndpointState_ENDPOINT_STATE_DISABLED) {
				return false
			}
		}
		return true
	})
	after := time.Now()

	status, body := pipedriveSDK(t, s, readToken, "list")
	if status != http.StatusOK || body["success"] != true {
		t.Fatalf("getWebhooks: %d %v", status, body)
	}
	hooks := map[string]map[string]any{}
	for _, h := range body["data"].([]any) {
		hook := h.(map[string]any)
		hooks[hook["name"].(string)] = hook
	}
	for name, want := range map[string]struct {
		delivered bool
		status    any
		active    float64
		removed   bool
	}{
		"ok":      {true, 204.0, 1, false},
		"failing": {true, 500.0, 1, false},
		"refused": {true, nil, 1, false}, // no response: Pipedrive's "Error"
		"gone":    {true, 410.0, 0, true},
		"idle":    {false, nil, 1, false},
	} {
		hook := hooks[name]
		if hook == nil || hook["id"] != pdIDs[name] {
			t.Errorf("%s: not listed as webhook %v: %v", name, pdIDs[name], hook)
			continue
		}
		if hook["last_http_status"] != want.status || hook["is_active"] != want.active {
			t.Errorf("%s: last_http_status %v, is_active %v; want %v, %v", name, hook["last_http_status"], hook["is_active"], want.status, want.active)
		}
		switch lt, _ := hook["last_delivery_time"].(string); {
		case !want.delivered && hook["last_delivery_time"] != nil:
			t.Errorf("%s: never attempted, but last_delivery_time %v", name, hook["last_delivery_time"])
		case want.delivered:
			at, err := time.Parse("2006-01-02T15:04:05.000Z", lt)
			if err != nil || at.Before(before.Add(-time.Second)) || at.After(after) {
				t.Errorf("%s: last_delivery_time %q (%v), not Pipedrive's format between %v and %v", name, lt, err, before, after)
			}
		}
		rt, _ := hook["remove_time"].(string)
		reason, _ := hook["remove_reason"].(string)
		switch {
		case !want.removed && (hook["remove_time"] != nil || hook["remove_reason"] != nil):
			t.Errorf("%s: remove_time %v, remove_reason %v; want null", name, hook["remove_time"], hook["remove_reason"])
		case want.removed:
			at, err := time.Parse("2006-01-02T15:04:05.000Z", rt)
			if err != nil || at.Before(before.Add(-time.Second)) || at.After(after) || !strings.Contains(reason, "410") {
				t.Errorf("%s: remove_time %q (%v), remove_reason %q; want the time it was disabled and why", name, rt, err, reason)
			}
		}
	}
}
