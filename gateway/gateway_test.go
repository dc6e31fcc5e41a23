package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"
)

// The webhook route's answers to the ingest errors vendors must retry: 503
// with the RetryInfo delay as Retry-After, so nothing refused is lost.
func TestWriteStatusRetryable(t *testing.T) {
	for _, tc := range []struct {
		reason     string
		code       codes.Code
		delay      time.Duration
		wantStatus int
		wantRetry  string
	}{
		{"QUARANTINE_FULL", codes.Unavailable, time.Minute, http.StatusServiceUnavailable, "60"},
		{"LOG_UNAVAILABLE", codes.Unavailable, 5 * time.Second, http.StatusServiceUnavailable, "5"},
		{"RATE_LIMITED", codes.ResourceExhausted, 1500 * time.Millisecond, http.StatusTooManyRequests, "2"},
		{"LOG_UNAVAILABLE", codes.Unavailable, 0, http.StatusServiceUnavailable, "5"}, // no RetryInfo: the default
	} {
		details := []protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: tc.reason, Domain: "hookstream.dev"}}
		if tc.delay > 0 {
			details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(tc.delay)})
		}
		st, err := status.New(tc.code, "msg").WithDetails(details...)
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		writeStatus(rec, st.Err())
		var body errorBody
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		if rec.Code != tc.wantStatus || rec.Header().Get("Retry-After") != tc.wantRetry || body.Error.Reason != tc.reason {
			t.Errorf("%s (%s, %s): %d Retry-After %q reason %q; want %d, %q, %s", tc.reason, tc.code, tc.delay,
				rec.Code, rec.Header().Get("Retry-After"), body.Error.Reason, tc.wantStatus, tc.wantRetry, tc.reason)
		}
	}
}
