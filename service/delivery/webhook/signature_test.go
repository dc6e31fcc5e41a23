package webhook_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookstream/hookstream/service/delivery/webhook"
)

// The Standard Webhooks test vector, from the reference libraries' tests
// and README (checked against the official Node package's sign()).
const (
	specSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTimestamp = 1614265330
	specBody      = `{"test": 2432232314}`
	specSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func mustParseSecret(t *testing.T, s string) []byte {
	t.Helper()
	key, err := webhook.ParseSecret(s)
	if err != nil {
		t.Fatalf("ParseSecret: %v", err)
	}
	return key
}

func newTestSecret(t *testing.T) string {
	t.Helper()
	s, err := webhook.NewSecret()
	if err != nil {
		t.Fatalf("NewSecret: %v", err)
	}
	return s
}

// headersFor is what Client.Send puts on the wire, for Verify to read.
func headersFor(id string, ts time.Time, sig string) http.Header {
	h := http.Header{}
	h.Set(webhook.HeaderID, id)
	h.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(webhook.HeaderSignature, sig)
	return h
}

func TestSignSpecVector(t *testing.T) {
	t.Parallel()
	ts := time.Unix(specTimestamp, 0)
	for _, secret := range []string{specSecret, strings.TrimPrefix(specSecret, "whsec_")} {
		key := mustParseSecret(t, secret)
		if got := webhook.Sign([][]byte{key}, specID, ts, []byte(specBody)); got != specSignature {
			t.Errorf("Sign(%q) = %q, want %q", secret, got, specSignature)
		}
	}
	// Sub-second parts of the timestamp are not signed.
	key := mustParseSecret(t, specSecret)
	if got := webhook.Sign([][]byte{key}, specID, ts.Add(999*time.Millisecond), []byte(specBody)); got != specSignature {
		t.Errorf("Sign with fractional seconds = %q, want %q", got, specSignature)
	}
	h := headersFor(specID, ts, specSignature)
	if err := webhook.Verify(specSecret, h, []byte(specBody), 5*time.Minute, ts); err != nil {
		t.Errorf("Verify(spec vector) = %v", err)
	}
}

func TestNewSecret(t *testing.T) {
	t.Parallel()
	a, b := newTestSecret(t), newTestSecret(t)
	if a == b {
		t.Fatal("two secrets are equal")
	}
	for _, s := range []string{a, b} {
		if !strings.HasPrefix(s, "whsec_") {
			t.Errorf("secret %q lacks the whsec_ prefix", s)
		}
		if key := mustParseSecret(t, s); len(key) != 32 {
			t.Errorf("secret decodes to %d bytes, want 32", len(key))
		}
	}
}

func TestParseSecret(t *testing.T) {
	t.Parallel()
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xa5}, n)) }
	tests := []struct {
		name    string
		in      string
		wantLen int
		wantErr string
	}{
		{"prefixed", "whsec_" + b64(32), 32, ""},
		{"bare", b64(32), 32, ""},
		{"shortest", "whsec_" + b64(24), 24, ""},
		{"longest", "whsec_" + b64(64), 64, ""},
		{"empty", "", 0, "empty"},
		{"prefix only", "whsec_", 0, "empty"},
		{"too short", "whsec_" + b64(23), 0, "23 bytes"},
		{"too long", "whsec_" + b64(65), 0, "65 bytes"},
		{"url-safe base64", "whsec_" + strings.NewReplacer("+", "-", "/", "_").Replace(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xfb, 0xff}, 16))), 0, "base64"},
		{"unpadded", "whsec_" + strings.TrimRight(b64(31), "="), 0, "base64"},
		{"spaces", "whsec_ " + b64(32), 0, "base64"},
		{"other prefix", "whsk_" + b64(32), 0, "base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			key, err := webhook.ParseSecret(tt.in)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseSecret: %v", err)
				}
				if len(key) != tt.wantLen {
					t.Fatalf("len = %d, want %d", len(key), tt.wantLen)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseSecret succeeded, want an error mentioning %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not mention %q", err, tt.wantErr)
			}
			if body := strings.TrimPrefix(tt.in, "whsec_"); len(body) > 8 && strings.Contains(err.Error(), body[:8]) {
				t.Errorf("error %q quotes the secret", err)
			}
		})
	}
}

func TestSignSeveralKeys(t *testing.T) {
	t.Parallel()
	k1, k2 := mustParseSecret(t, newTestSecret(t)), mustParseSecret(t, newTestSecret(t))
	ts := time.Unix(1700000000, 0)
	body := []byte(`{"a":1}`)
	got := webhook.Sign([][]byte{k1, k2}, "evt1", ts, body)
	want := webhook.Sign([][]byte{k1}, "evt1", ts, body) + " " + webhook.Sign([][]byte{k2}, "evt1", ts, body)
	if got != want {
		t.Errorf("Sign(two keys) = %q, want %q", got, want)
	}
	if n := len(strings.Fields(got)); n != 2 {
		t.Errorf("Sign(two keys) has %d signatures", n)
	}
	if got := webhook.Sign(nil, "evt1", ts, body); got != "" {
		t.Errorf("Sign(no keys) = %q, want empty", got)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	secret, other, third := newTestSecret(t), newTestSecret(t), newTestSecret(t)
	key, otherKey := mustParseSecret(t, secret), mustParseSecret(t, other)
	ts := time.Unix(1700000000, 0)
	body := []byte(`{"type":"deal.updated"}`)
	sig := webhook.Sign([][]byte{key}, "evt1", ts, body)
	const tolerance = 5 * time.Minute

	tests := []struct {
		name    string
		secret  string
		header  http.Header
		body    []byte
		now     time.Time
		wantErr error // nil: passes
	}{
		{"valid", secret, headersFor("evt1", ts, sig), body, ts, nil},
		{"valid at the tolerance", secret, headersFor("evt1", ts, sig), body, ts.Add(tolerance), nil},
		{"rotation: old key first", secret, headersFor("evt1", ts, webhook.Sign([][]byte{otherKey, key}, "evt1", ts, body)), body, ts, nil},
		{"rotation: new key first", other, headersFor("evt1", ts, webhook.Sign([][]byte{otherKey, key}, "evt1", ts, body)), body, ts, nil},
		{"unknown schemes are skipped", secret, headersFor("evt1", ts, "v1a,AAAA v2,BBBB "+sig), body, ts, nil},
		{"tampered body", secret, headersFor("evt1", ts, sig), []byte(`{"type":"deal.deleted"}`), ts, webhook.ErrNoMatch},
		{"tampered id", secret, headersFor("evt2", ts, sig), body, ts, webhook.ErrNoMatch},
		{"tampered timestamp", secret, headersFor("evt1", ts.Add(time.Second), sig), body, ts, webhook.ErrNoMatch},
		{"wrong secret", third, headersFor("evt1", ts, sig), body, ts, webhook.ErrNoMatch},
		{"signature of another version", secret, headersFor("evt1", ts, "v2,"+strings.TrimPrefix(sig, "v1,")), body, ts, webhook.ErrNoMatch},
		{"signature not base64", secret, headersFor("evt1", ts, "v1,!!!"), body, ts, webhook.ErrNoMatch},
		{"too old", secret, headersFor("evt1", ts, sig), body, ts.Add(tolerance + time.Second), webhook.ErrInvalidTimestamp},
		{"too new", secret, headersFor("evt1", ts, sig), body, ts.Add(-tolerance - time.Second), webhook.ErrInvalidTimestamp},
		{"timestamp not a number", secret, func() http.Header {
			h := headersFor("evt1", ts, sig)
			h.Set(webhook.HeaderTimestamp, "2023-11-14T22:13:20Z")
			return h
		}(), body, ts, webhook.ErrInvalidTimestamp},
		{"no id", secret, func() http.Header { h := headersFor("evt1", ts, sig); h.Del(webhook.HeaderID); return h }(), body, ts, webhook.ErrMissingHeader},
		{"no timestamp", secret, func() http.Header { h := headersFor("evt1", ts, sig); h.Del(webhook.HeaderTimestamp); return h }(), body, ts, webhook.ErrMissingHeader},
		{"no signature", secret, func() http.Header { h := headersFor("evt1", ts, sig); h.Del(webhook.HeaderSignature); return h }(), body, ts, webhook.ErrMissingHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := webhook.Verify(tt.secret, tt.header, tt.body, tolerance, tt.now)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Verify = %v, want success", err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify = %v, want %v", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), tt.secret) || strings.Contains(err.Error(), strings.TrimPrefix(tt.secret, "whsec_")) {
				t.Errorf("error %q contains the secret", err)
			}
		})
	}

	if err := webhook.Verify("whsec_short", headersFor("evt1", ts, sig), body, tolerance, ts); err == nil {
		t.Error("Verify with an invalid secret succeeded")
	}
}
