package gateway

import (
	"net/http/httptest"
	"testing"
)

// TestIsRPC: Connect and gRPC-Web calls go to vanguard, REST (the webhook
// route's JSON included) stays on the mux.
func TestIsRPC(t *testing.T) {
	for _, tc := range []struct {
		method, target, contentType string
		want                        bool
	}{
		{"POST", "/hookstream.v1.EventService/ListEvents", "application/json", true},
		{"POST", "/hookstream.v1.EventService/ListEvents", "application/proto", true},
		{"POST", "/hookstream.v1.EventService/Subscribe", "application/connect+json", true},
		{"POST", "/hookstream.v1.EventService/Subscribe", "application/connect+proto", true},
		{"POST", "/hookstream.v1.EventService/ListEvents", "application/grpc-web+proto", true},
		{"POST", "/hookstream.v1.EventService/ListEvents", "application/grpc-web-text", true},
		{"GET", "/hookstream.v1.EventService/ListEvents?connect=v1&encoding=json&message=%7B%7D", "", true},
		{"GET", "/hookstream.v1.EventService/ListEvents", "", false},
		{"POST", "/v1/webhooks/closer", "application/json", false},
		{"POST", "/v1/webhooks/closer", "application/json; charset=utf-8", false},
		{"POST", "/v1/quarantine:reprocess", "application/json", false},
		{"GET", "/v1/events", "", false},
		{"PUT", "/hookstream.v1.EventService/ListEvents", "application/json", false},
	} {
		r := httptest.NewRequest(tc.method, tc.target, nil)
		if tc.contentType != "" {
			r.Header.Set("Content-Type", tc.contentType)
		}
		if got := isRPC(r); got != tc.want {
			t.Errorf("%s %s (%s): isRPC = %v, want %v", tc.method, tc.target, tc.contentType, got, tc.want)
		}
	}
}
