package system

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// budgetFilter depends on the event, so it is not refused when compiled;
// each evaluation costs about 45,000 CEL units (within the 100,000 limit
// of one), so ListEvents's budget of 5,000,000 runs out after about 110
// events, none of which it matches.
const budgetFilter = `[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14].all(a, ` +
	`[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14].all(b, ` +
	`[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14].all(c, a + b + c >= size(event.id) - 100))) ` +
	`&& event.type == "never"`

// TestFilterBudgetOverREST: GET /v1/events with a filter that spends the
// request's evaluation budget before it matches anything answers 429 with
// the Google JSON error body: status RESOURCE_EXHAUSTED, an ErrorInfo with
// reason FILTER_BUDGET_SPENT and a next_page_token in its metadata, which
// goes on from where the budget ran out.
func TestFilterBudgetOverREST(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, t.TempDir(), ""))
	const events = 160 // more than the budget covers, fewer than two budgets
	for i := range events {
		body := fmt.Sprintf(`{"eventType": "ThreadClosedEvent", "timestamp": %d, "closedType": "solved", "customer": {"id": "c-%d"}}`,
			1718000950456+int64(i), i)
		if r := s.post("/v1/webhooks/closer?token="+closerToken, []byte(body), nil); r.code != http.StatusOK {
			t.Fatalf("webhook %d: %d %v", i, r.code, r.body)
		}
	}

	list := func(query url.Values) (int, http.Header, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, s.base+"/v1/events?"+query.Encode(), nil)
		req.Header.Set("Authorization", "Bearer "+readToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header, raw
	}

	code, header, raw := list(url.Values{"filter": {budgetFilter}, "page_size": {"10"}})
	var e struct {
		Error struct {
			Code    int    `json:"code"`
			Status  string `json:"status"`
			Message string `json:"message"`
			Details []struct {
				Type     string            `json:"@type"`
				Reason   string            `json:"reason"`
				Domain   string            `json:"domain"`
				Metadata map[string]string `json:"metadata"`
			} `json:"details"`
		} `json:"error"`
	}
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatalf("GET /v1/events with a costly filter: %d with a body that is not JSON: %q", code, raw)
	}
	if code != http.StatusTooManyRequests || e.Error.Code != http.StatusTooManyRequests || e.Error.Status != "RESOURCE_EXHAUSTED" {
		t.Fatalf("GET /v1/events with a costly filter: %d %s, want 429 with code 429 and status RESOURCE_EXHAUSTED", code, raw)
	}
	if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("error Content-Type %q, want application/json", ct)
	}
	token := ""
	for _, d := range e.Error.Details {
		if strings.HasSuffix(d.Type, "google.rpc.ErrorInfo") && d.Reason == "FILTER_BUDGET_SPENT" && d.Domain == "hookstream.dev" {
			token = d.Metadata["next_page_token"]
		}
	}
	if token == "" {
		t.Fatalf("error body %s, want an ErrorInfo with reason FILTER_BUDGET_SPENT, domain hookstream.dev and metadata.next_page_token", raw)
	}

	// The token goes on from the event the budget cut short: what is left
	// fits one budget, so the same filter now reads to the end (from the
	// beginning again it would run out once more).
	code, _, raw = list(url.Values{"filter": {budgetFilter}, "page_size": {"10"}, "page_token": {token}})
	var page struct {
		Events        []json.RawMessage `json:"events"`
		NextPageToken string            `json:"nextPageToken"`
	}
	if err := json.Unmarshal(raw, &page); err != nil || code != http.StatusOK || len(page.Events) != 0 || page.NextPageToken != "" {
		t.Fatalf("GET /v1/events from the budget's next_page_token: %d %s (%v), want 200, no events and no next page", code, raw, err)
	}
}
