package service

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/auth"
	"github.com/hookstream/hookstream/service/normalize"
)

// A missing token set fails closed: calls that need a scope are refused,
// whatever token they carry; calls that need none pass.
func TestInterceptorsFailClosed(t *testing.T) {
	t.Parallel()
	reader := auth.NewAPIToken("r", auth.ScopeRead, "read-token-0123456789")
	for name, tokens := range map[string]*auth.APITokens{"nil": nil, "empty": auth.NewAPITokens()} {
		ic := Interceptors{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: NewMetrics(prometheus.NewRegistry()), Tokens: tokens}
		ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer read-token-0123456789"))
		if _, err := ic.authorize(ctx, hookstreamv1.EventService_ListEvents_FullMethodName); status.Code(err) != codes.Unauthenticated {
			t.Errorf("%s tokens: ListEvents with a token = %v, want UNAUTHENTICATED", name, err)
		}
		if _, err := ic.authorize(ctx, hookstreamv1.IngestService_IngestWebhook_FullMethodName); err != nil {
			t.Errorf("%s tokens: the webhook route needs no API token, got %v", name, err)
		}
	}
	ic := Interceptors{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: NewMetrics(prometheus.NewRegistry()),
		Tokens: auth.NewAPITokens(reader)}
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer read-token-0123456789"))
	if _, err := ic.authorize(ctx, hookstreamv1.EventService_ListEvents_FullMethodName); err != nil {
		t.Errorf("a read token on ListEvents: %v", err)
	}
	if _, err := ic.authorize(ctx, hookstreamv1.QuarantineService_ListQuarantined_FullMethodName); status.Code(err) != codes.PermissionDenied {
		t.Errorf("a read token on quarantine: %v, want PERMISSION_DENIED", err)
	}
	// Sources are listed masked to readers; their credentials need admin.
	if _, err := ic.authorize(ctx, hookstreamv1.SourceService_ListSources_FullMethodName); err != nil {
		t.Errorf("a read token on ListSources: %v", err)
	}
	if _, err := ic.authorize(ctx, hookstreamv1.SourceService_GetSourceCredentials_FullMethodName); status.Code(err) != codes.PermissionDenied {
		t.Errorf("a read token on GetSourceCredentials: %v, want PERMISSION_DENIED", err)
	}
}

// A violation names its field; one of a message-level rule, which has
// none, is its message alone (it read ": endpoint_id or event_id is
// required").
func TestValidationMessages(t *testing.T) {
	t.Parallel()
	v, err := normalize.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	ic := Interceptors{Validator: v}
	for req, want := range map[proto.Message]string{
		&hookstreamv1.ListDeliveryAttemptsRequest{}:                                 "endpoint_id or event_id is required",
		&hookstreamv1.ListDeliveryAttemptsRequest{EventId: "nothex"}:                "event_id: ",
		&hookstreamv1.ListDeliveryAttemptsRequest{EndpointId: "ep_x", PageSize: -1}: "page_size: ",
		&hookstreamv1.RedriveDeadLettersRequest{EndpointId: "ep_x"}:                 "selector: exactly one field is required in oneof (set one of dead_letter_id, all, dead_time)",
	} {
		msg := status.Convert(ic.validate(req)).Message()
		if !strings.HasPrefix(msg, want) {
			t.Errorf("%T %v: message %q, want it to start %q", req, req, msg, want)
		}
	}
}
