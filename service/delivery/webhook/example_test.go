package webhook_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookstream/hookstream/service/delivery/webhook"
)

// Verifying the Standard Webhooks test vector, the way a receiver does.
func ExampleVerify() {
	header := http.Header{}
	header.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	header.Set("webhook-timestamp", "1614265330")
	header.Set("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	body := []byte(`{"test": 2432232314}`)
	now := time.Unix(1614265330, 0).Add(time.Minute) // a minute in transit

	err := webhook.Verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", header, body, 5*time.Minute, now)
	fmt.Println("genuine:", err)

	err = webhook.Verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", header, []byte(`{"test": 1}`), 5*time.Minute, now)
	fmt.Println("tampered:", err)

	err = webhook.Verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", header, body, 5*time.Minute, now.Add(time.Hour))
	fmt.Println("replayed:", err)
	// Output:
	// genuine: <nil>
	// tampered: no matching signature
	// replayed: invalid webhook-timestamp: 1h1m0s old, more than the 5m0s tolerance
}

// Signing with the current and the previous key during a rotation. (The
// second signature was computed with the official Node library.)
func ExampleSign() {
	current, _ := webhook.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	previous, _ := webhook.ParseSecret("whsec_" + strings.Repeat("A", 32))
	fmt.Println(webhook.Sign([][]byte{current, previous}, "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`)))
	// Output:
	// v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1,woH/1mJtZGSMCmpFTxRYbStS24eLLD/oXIYr4PYyZ7g=
}

// TestDocSnippetInSync checks that the Go example in
// docs/verifying-webhooks.md is docsnippet_test.go, which the tests below
// compile and run.
func TestDocSnippetInSync(t *testing.T) {
	t.Parallel()
	const marker = "<!-- snippet: service/delivery/webhook/docsnippet_test.go -->"
	doc, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "verifying-webhooks.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(doc), marker+"\n```go\n")
	if !ok {
		t.Fatalf("docs/verifying-webhooks.md has no %q followed by a ```go block", marker)
	}
	inDoc, _, ok := strings.Cut(after, "\n```\n")
	if !ok {
		t.Fatal("the Go block in docs/verifying-webhooks.md is not closed")
	}
	src, err := os.ReadFile("docsnippet_test.go")
	if err != nil {
		t.Fatal(err)
	}
	// The import line itself, not the comment that names it.
	i := strings.Index(string(src), "\nimport (\n")
	if i < 0 {
		t.Fatal(`docsnippet_test.go has no line "import ("`)
	}
	i++
	if inCode := strings.TrimSpace(string(src[i:])); inDoc != inCode {
		t.Errorf("the Go example in docs/verifying-webhooks.md differs from docsnippet_test.go (from \"import (\" on); copy the file's code into the doc.\ndoc:\n%s\n\ncode:\n%s", inDoc, inCode)
	}
}

// TestReadmeSnippetInSync checks that the README's verification
// function is verifyWebhook of docsnippet_test.go, character for
// character, so the README shows code that is tested.
func TestReadmeSnippetInSync(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("docsnippet_test.go")
	if err != nil {
		t.Fatal(err)
	}
	start := strings.Index(string(src), "// verifyWebhook checks")
	end := strings.Index(string(src[start:]), "\n}\n")
	if start < 0 || end < 0 {
		t.Fatal("docsnippet_test.go has no verifyWebhook")
	}
	fn := string(src[start : start+end+3])
	if !strings.Contains(string(readme), "```go\n"+fn+"```\n") {
		t.Errorf("README.md does not show verifyWebhook exactly as docsnippet_test.go has it; copy it:\n%s", fn)
	}
}

// TestDocSnippetAgreesWithVerify runs the documented receiver code and
// Verify on the same deliveries: they must accept and refuse the same ones.
func TestDocSnippetAgreesWithVerify(t *testing.T) {
	t.Parallel()
	secret, other := newTestSecret(t), newTestSecret(t)
	key, otherKey := mustParseSecret(t, secret), mustParseSecret(t, other)
	ts := time.Unix(1700000000, 0)
	body := []byte(`{"type":"deal.updated","name":"Zoë"}`)
	sig := webhook.Sign([][]byte{key}, "evt1", ts, body)
	withHeader := func(name, value string) http.Header {
		h := headersFor("evt1", ts, sig)
		h.Set(name, value)
		return h
	}
	tests := []struct {
		name   string
		header http.Header
		body   []byte
		now    time.Time
		want   bool
	}{
		{"valid", headersFor("evt1", ts, sig), body, ts, true},
		{"spec vector", headersFor(specID, time.Unix(specTimestamp, 0), specSignature), []byte(specBody), time.Unix(specTimestamp, 0), false}, // another secret
		{"rotation", headersFor("evt1", ts, webhook.Sign([][]byte{otherKey, key}, "evt1", ts, body)), body, ts, true},
		{"other schemes first", headersFor("evt1", ts, "v1a,AAAA "+sig), body, ts, true},
		{"4m59s late", headersFor("evt1", ts, sig), body, ts.Add(4*time.Minute + 59*time.Second), true},
		{"5m late", headersFor("evt1", ts, sig), body, ts.Add(5 * time.Minute), true},
		{"5m1s late", headersFor("evt1", ts, sig), body, ts.Add(5*time.Minute + time.Second), false},
		{"5m early", headersFor("evt1", ts, sig), body, ts.Add(-5 * time.Minute), true},
		{"5m1s early", headersFor("evt1", ts, sig), body, ts.Add(-5*time.Minute - time.Second), false},
		{"tampered body", headersFor("evt1", ts, sig), []byte(`{}`), ts, false},
		{"tampered id", withHeader("webhook-id", "evt2"), body, ts, false},
		{"tampered timestamp", withHeader("webhook-timestamp", "1700000001"), body, ts, false},
		{"timestamp with leading zero", withHeader("webhook-timestamp", "01700000000"), body, ts, true},
		{"timestamp not a number", withHeader("webhook-timestamp", "x"), body, ts, false},
		{"no id", withHeader("webhook-id", ""), body, ts, false},
		{"no signature", withHeader("webhook-signature", ""), body, ts, false},
		{"bare signature", withHeader("webhook-signature", strings.TrimPrefix(sig, "v1,")), body, ts, false},
		{"wrong version", withHeader("webhook-signature", "v2,"+strings.TrimPrefix(sig, "v1,")), body, ts, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			snippet := verifyWebhook(secret, tt.header, tt.body, tt.now)
			verify := webhook.Verify(secret, tt.header, tt.body, webhookTolerance, tt.now)
			if (snippet == nil) != tt.want || (verify == nil) != tt.want {
				t.Errorf("doc snippet: %v; Verify: %v; want accepted = %v", snippet, verify, tt.want)
			}
		})
	}
}

// The documented handler accepts what Client.Send sends, and only that.
func TestDocSnippetHandler(t *testing.T) {
	t.Parallel()
	secret := newTestSecret(t)
	handled := make(chan string, 1)
	srv, _ := newServer(t, webhookHandler(secret, func(id string, _ []byte) error {
		handled <- id
		return nil
	}).ServeHTTP)
	c := newClient(t, webhook.Options{AllowNetworks: allowLoopback})

	req := testRequest(t, srv.URL)
	req.Keys = [][]byte{mustParseSecret(t, secret)}
	if res := c.Send(t.Context(), req); res.Status != http.StatusNoContent {
		t.Fatalf("signed with the secret: %+v", res)
	}
	if id := <-handled; id != req.ID {
		t.Errorf("handled id %q, want %q", id, req.ID)
	}
	req.Keys = [][]byte{mustParseSecret(t, newTestSecret(t))}
	if res := c.Send(t.Context(), req); res.Status != http.StatusUnauthorized {
		t.Errorf("signed with another secret: %+v", res)
	}
}
