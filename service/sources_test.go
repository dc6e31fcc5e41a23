package service_test

import (
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/testing/protocmp"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service"
	"github.com/hookstream/hookstream/service/auth"
	"github.com/hookstream/hookstream/service/eventlog"
	"github.com/hookstream/hookstream/service/filter"
	"github.com/hookstream/hookstream/service/normalize"
	"github.com/hookstream/hookstream/service/normalize/closer"
	"github.com/hookstream/hookstream/service/normalize/pipedrive"
)

const (
	sourcePassword = "basic-password-0123456789"
	sourceToken    = "url-token-0123456789abcdef"
)

// sourcesUnderTest builds the services with a Basic-auth Pipedrive source
// and a token Closer source behind a public URL.
func sourcesUnderTest(t *testing.T) *service.Services {
	t.Helper()
	v, err := normalize.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	basic, err := auth.Basic("pd", sourcePassword)
	if err != nil {
		t.Fatal(err)
	}
	token, err := auth.Token(sourceToken)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	log, err := eventlog.Open(context.Background(), eventlog.Config{DataDir: t.TempDir()}, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(log.Close)
	filters, err := filter.NewCompiler()
	if err != nil {
		t.Fatal(err)
	}
	s, err := service.New(service.Options{Logger: logger, Log: log, Filters: filters, PublicURL: "https://hooks.example.com/",
		Sources: []service.Source{
			{Name: "pipedrive", Vendor: hookstreamv1.Vendor_VENDOR_PIPEDRIVE, Auth: basic, Normalizer: pipedrive.New(v),
				Title: pipedrive.Vendor.Title, Where: pipedrive.Vendor.Where, RateLimit: 5, Burst: 5,
				Credentials: normalize.Credentials{Username: "pd", Password: sourcePassword}},
			{Name: "chat", Vendor: hookstreamv1.Vendor_VENDOR_CLOSER, Auth: token, Normalizer: closer.New(v),
				Title: closer.Vendor.Title, Where: closer.Vendor.Where, Credentials: normalize.Credentials{Token: sourceToken}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// ListSources shows every source in config order with its setup fields,
// never a secret; GetSourceCredentials has them in clear.
func TestListSourcesMasksSecrets(t *testing.T) {
	t.Parallel()
	s := sourcesUnderTest(t)
	ctx := context.Background()
	resp, err := s.Sources.ListSources(ctx, &hookstreamv1.ListSourcesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	text := prototext.Format(resp)
	for _, secret := range []string{sourcePassword, sourceToken} {
		if strings.Contains(text, secret) {
			t.Fatalf("ListSources shows a secret:\n%s", text)
		}
	}
	want := &hookstreamv1.ListSourcesResponse{Sources: []*hookstreamv1.Source{{
		Name: "pipedrive", Vendor: hookstreamv1.Vendor_VENDOR_PIPEDRIVE, VendorTitle: "Pipedrive",
		AuthScheme: hookstreamv1.SourceAuthScheme_SOURCE_AUTH_SCHEME_BASIC, WebhookPath: "/v1/webhooks/pipedrive",
		WebhookUrl: "https://hooks.example.com/v1/webhooks/pipedrive", SetupLocation: pipedrive.Vendor.Where, RateLimit: 5,
		SetupFields: []*hookstreamv1.SetupField{
			{Label: "URL", Value: "https://hooks.example.com/v1/webhooks/pipedrive"},
			{Label: "HTTP auth username", Value: "pd"},
			{Label: "HTTP auth password", Secret: true},
		},
		Stats: &hookstreamv1.SourceStats{},
	}, {
		Name: "chat", Vendor: hookstreamv1.Vendor_VENDOR_CLOSER, VendorTitle: "Closer",
		AuthScheme: hookstreamv1.SourceAuthScheme_SOURCE_AUTH_SCHEME_TOKEN, WebhookPath: "/v1/webhooks/chat",
		WebhookUrl: "https://hooks.example.com/v1/webhooks/chat", SetupLocation: closer.Vendor.Where,
		SetupFields: []*hookstreamv1.SetupField{
			{Label: "URL", Secret: true, MaskedValue: "https://hooks.example.com/v1/webhooks/chat?token=[MASKED]"},
		},
		Stats: &hookstreamv1.SourceStats{},
	}}}
	if diff := cmp.Diff(want, resp, protocmp.Transform()); diff != "" {
		t.Errorf("ListSources (-want +got):\n%s", diff)
	}

	creds, err := s.Sources.GetSourceCredentials(ctx, &hookstreamv1.GetSourceCredentialsRequest{Source: "chat"})
	if err != nil {
		t.Fatal(err)
	}
	wantCreds := []*hookstreamv1.SetupField{{Label: "URL", Secret: true,
		Value:       "https://hooks.example.com/v1/webhooks/chat?token=" + sourceToken,
		MaskedValue: "https://hooks.example.com/v1/webhooks/chat?token=[MASKED]"}}
	if diff := cmp.Diff(wantCreds, creds.GetSetupFields(), protocmp.Transform()); diff != "" {
		t.Errorf("GetSourceCredentials (-want +got):\n%s", diff)
	}
	if _, err := s.Sources.GetSourceCredentials(ctx, &hookstreamv1.GetSourceCredentialsRequest{Source: "nope"}); status.Code(err) != codes.NotFound {
		t.Errorf("GetSourceCredentials of an unknown source = %v, want NOT_FOUND", err)
	}
}

// The stats count each outcome and keep the last failure, without the
// credentials or the payload.
func TestListSourcesStats(t *testing.T) {
	t.Parallel()
	s := sourcesUnderTest(t)
	ctx := context.Background()
	post := func(body, authorization string) {
		t.Helper()
		_, err := s.Ingest.IngestWebhook(ctx, &hookstreamv1.IngestWebhookRequest{Source: "pipedrive",
			Headers: map[string]string{"authorization": authorization},
			Body:    &httpbody.HttpBody{ContentType: "application/json", Data: []byte(body)}})
		if err != nil && status.Code(err) != codes.Unauthenticated {
			t.Fatal(err)
		}
	}
	good := "Basic " + base64.StdEncoding.EncodeToString([]byte("pd:"+sourcePassword))
	post(`{"meta": {"id": "x"`, good) // quarantined: malformed JSON
	post(`{}`, "Basic "+base64.StdEncoding.EncodeToString([]byte("pd:wrong")))

	resp, err := s.Sources.ListSources(ctx, &hookstreamv1.ListSourcesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	st := resp.GetSources()[0].GetStats()
	if st.GetQuarantined() != 1 || st.GetUnauthenticated() != 1 || st.GetAccepted() != 0 {
		t.Errorf("stats = %v, want 1 quarantined and 1 unauthenticated", st)
	}
	if st.GetLastRequestTime() == nil {
		t.Error("no last_request_time")
	}
	if e := st.GetLastError(); e.GetOutcome() != "unauthenticated" || e.GetMessage() != "wrong basic credentials" || e.GetTime() == nil {
		t.Errorf("last_error = %v, want the failed authentication", e)
	}
	if resp.GetSources()[1].GetStats().GetLastRequestTime() != nil {
		t.Error("a source without requests has a last_request_time")
	}

	post(`{"meta": {"id": "y"`, good)
	resp, err = s.Sources.ListSources(ctx, &hookstreamv1.ListSourcesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if e := resp.GetSources()[0].GetStats().GetLastError(); e.GetOutcome() != "quarantined" || !strings.HasPrefix(e.GetMessage(), "MALFORMED_JSON") {
		t.Errorf("last_error = %v, want the quarantined request's code", e)
	}
}
