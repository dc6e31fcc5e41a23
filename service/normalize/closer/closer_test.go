package closer_test

import (
	"os"
	"strings"
	"testing"

	"github.com/valyala/fastjson"

	"github.com/hookstream/hookstream/service/normalize"
	"github.com/hookstream/hookstream/service/normalize/closer"
	"github.com/hookstream/hookstream/service/normalize/normalizetest"
)

func newNormalizer(t testing.TB) *closer.Normalizer { return closer.New(normalizetest.Validator(t)) }

// apiKeys returns every customer.apiKey in a fixture, the secret that must
// never reach an event.
func apiKeys(body []byte) []string {
	v, err := fastjson.ParseBytes(body)
	if err != nil {
		return nil
	}
	return []string{string(v.GetStringBytes("customer", "apiKey"))}
}

func TestGolden(t *testing.T) {
	t.Parallel()
	normalizetest.Golden(t, newNormalizer(t), "testdata", apiKeys)
}

func TestRetryGetsSameID(t *testing.T) {
	t.Parallel()
	normalizetest.SameDelivery(t, newNormalizer(t), "testdata", "closed", "closed_retry", "created")
}

func TestSourceIsPartOfID(t *testing.T) {
	t.Parallel()
	n := newNormalizer(t)
	body, err := os.ReadFile("testdata/created.json")
	if err != nil {
		t.Fatal(err)
	}
	a, errA := n.Normalize(normalize.Input{Source: "a", Body: body, ReceivedAt: normalizetest.ReceivedAt})
	b, errB := n.Normalize(normalize.Input{Source: "b", Body: body, ReceivedAt: normalizetest.ReceivedAt})
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	if a.GetId() == b.GetId() {
		t.Errorf("two sources share event id %s", a.GetId())
	}
}

func TestType(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"ThreadCreatedEvent":  "conversation.created",
		"ThreadClosedEvent":   "conversation.closed",
		"ThreadReopenedEvent": "conversation.reopened",
		"AgentLoginEvent":     "agent.login",
		"Ping":                "conversation.ping",
		"ThreadEvent":         "conversation.thread",
	} {
		if got := closer.Type(in); got != want {
			t.Errorf("Type(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	n := newNormalizer(t)
	for _, name := range []string{"closed", "seed_closed_malformed"} {
		body, err := os.ReadFile("testdata/" + name + ".json")
		if err != nil {
			t.Fatal(err)
		}
		out := string(normalize.ScrubBody(body, n.SecretMembers(), nil))
		for _, secret := range []string{"9b7e1d20-44aa-4f0e-8c3b-2a6f5e9d7b11", `"apiKey": "00000000`} {
			if strings.Contains(out, secret) {
				t.Errorf("%s: redacted body still holds %q", name, secret)
			}
		}
		if !strings.Contains(out, normalize.Redacted) {
			t.Errorf("%s: no redaction marker in %s", name, out)
		}
	}
}

func FuzzNormalize(f *testing.F) { normalizetest.FuzzTarget(f, newNormalizer(f), "testdata") }

func BenchmarkNormalizeClosed(b *testing.B) {
	normalizetest.Benchmark(b, newNormalizer(b), "testdata/closed.json")
}
