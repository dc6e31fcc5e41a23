package webhook_test

// Everything from "import (" to the end of this file is the Go example in
// docs/verifying-webhooks.md, character for character: TestDocSnippetInSync
// fails when the two differ, and TestDocSnippetAgreesWithVerify when its
// logic drifts from Verify's.

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// webhookTolerance is how far webhook-timestamp may be from this server's
// clock. Older deliveries are refused, so a captured request cannot be
// replayed later.
const webhookTolerance = 5 * time.Minute

// verifyWebhook checks a hookstream webhook against the endpoint's signing
// secret ("whsec_..."). body must be the raw request body, exactly as
// received: parsing and re-encoding JSON changes the bytes.
func verifyWebhook(secret string, header http.Header, body []byte, now time.Time) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return errors.New("the webhook secret is not valid base64")
	}
	id := header.Get("webhook-id")
	timestamp := header.Get("webhook-timestamp")
	signatures := header.Get("webhook-signature")
	if id == "" || timestamp == "" || signatures == "" {
		return errors.New("missing webhook-id, webhook-timestamp or webhook-signature header")
	}
	unix, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return errors.New("webhook-timestamp is not a number")
	}
	if age := now.Sub(time.Unix(unix, 0)); age > webhookTolerance || age < -webhookTolerance {
		return fmt.Errorf("webhook-timestamp is %s away from now", age)
	}
	// The signed content is "<webhook-id>.<webhook-timestamp>.<body>".
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.", id, unix)
	mac.Write(body)
	expected := mac.Sum(nil)
	// While a secret is being rotated, there is one signature per secret;
	// one match is enough.
	for _, versioned := range strings.Fields(signatures) {
		version, signature, ok := strings.Cut(versioned, ",")
		if !ok || version != "v1" {
			continue
		}
		decoded, err := base64.StdEncoding.DecodeString(signature)
		if err == nil && hmac.Equal(decoded, expected) { // constant-time comparison
			return nil
		}
	}
	return errors.New("no matching signature")
}

// webhookHandler answers 401 to requests not signed with secret and passes
// verified webhooks to handle.
func webhookHandler(secret string, handle func(id string, body []byte) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "cannot read the body", http.StatusBadRequest)
			return
		}
		if err := verifyWebhook(secret, r.Header, body, time.Now()); err != nil {
			http.Error(w, "invalid webhook signature", http.StatusUnauthorized)
			return
		}
		// webhook-id is the same on every retry of one event: use it to
		// skip duplicates.
		if err := handle(r.Header.Get("webhook-id"), body); err != nil {
			http.Error(w, "try again later", http.StatusServiceUnavailable) // hookstream retries
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
