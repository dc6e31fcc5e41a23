package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	rpccode "google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service"
	"github.com/hookstream/hookstream/ui"
)

// decodeError reads the one error shape and returns it with its
// ErrorInfo reason.
func decodeError(t *testing.T, b []byte) (errorFields, string) {
	t.Helper()
	var e struct {
		Error struct {
			Code    int               `json:"code"`
			Status  string            `json:"status"`
			Message string            `json:"message"`
			Details []json.RawMessage `json:"details"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("not the error shape: %v: %s", err, b)
	}
	reason := ""
	for _, d := range e.Error.Details {
		var info struct {
			Type   string `json:"@type"`
			Reason string `json:"reason"`
			Domain string `json:"domain"`
		}
		if err := json.Unmarshal(d, &info); err == nil && strings.HasSuffix(info.Type, "google.rpc.ErrorInfo") {
			reason = info.Reason
		}
	}
	return errorFields{Code: e.Error.Code, Status: e.Error.Status, Message: e.Error.Message}, reason
}

// Without an overriding reason, every gRPC code maps as grpc-gateway
// maps it.
func TestHTTPStatusFollowsRuntime(t *testing.T) {
	t.Parallel()
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		st := statusOf(c, "SOMETHING", "m", nil)
		if got, want := HTTPStatus(st), runtime.HTTPStatusFromCode(c); got != want {
			t.Errorf("%s: %d, want runtime's %d", c, got, want)
		}
	}
	for _, tc := range []struct {
		code   codes.Code
		reason string
		want   int
	}{
		{codes.InvalidArgument, "BODY_TOO_LARGE", http.StatusRequestEntityTooLarge},
		{codes.InvalidArgument, "UNSUPPORTED_CONTENT_ENCODING", http.StatusUnsupportedMediaType},
		{codes.DeadlineExceeded, "BODY_TIMEOUT", http.StatusRequestTimeout},
		{codes.Unimplemented, "METHOD_NOT_ALLOWED", http.StatusMethodNotAllowed},
		{codes.DeadlineExceeded, "", http.StatusGatewayTimeout},
		{codes.AlreadyExists, "", http.StatusConflict},
		{codes.Aborted, "", http.StatusConflict},
		{codes.Unimplemented, "", http.StatusNotImplemented},
		{codes.OutOfRange, "CURSOR_PAST_END", http.StatusBadRequest},
		{codes.Unavailable, "LOG_UNAVAILABLE", http.StatusServiceUnavailable},
		{codes.ResourceExhausted, "RATE_LIMITED", http.StatusTooManyRequests},
		{codes.Canceled, "", 499},
	} {
		if got := HTTPStatus(statusOf(tc.code, tc.reason, "m", nil)); got != tc.want {
			t.Errorf("%s %s: %d, want %d", tc.code, tc.reason, got, tc.want)
		}
	}
}

// Reasons the services raise and the gateway maps to a status of their
// own are spelled the same on both sides (the gateway cannot import the
// services, so a rename there would silently change the status here).
func TestOverriddenReasonsExist(t *testing.T) {
	t.Parallel()
	for _, reason := range []string{service.ReasonBodyTooLarge, service.ReasonBodyEncoding} {
		if _, ok := reasonStatus[reason]; !ok {
			t.Errorf("service reason %s has no status override in the gateway", reason)
		}
	}
	if ErrorDomain != service.ErrorDomain {
		t.Errorf("error domain %q, the services use %q", ErrorDomain, service.ErrorDomain)
	}
}

// The webhook route's answers to the ingest errors vendors must retry: 503
// with the RetryInfo delay as Retry-After, so nothing refused is lost.
func TestWriteStatusRetryable(t *testing.T) {
	t.Parallel()
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
		var details []protoadapt.MessageV1
		if tc.delay > 0 {
			details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(tc.delay)})
		}
		rec := httptest.NewRecorder()
		writeStatus(rec, statusOf(tc.code, tc.reason, "msg", nil, details...).Err())
		e, reason := decodeError(t, rec.Body.Bytes())
		if rec.Code != tc.wantStatus || rec.Header().Get("Retry-After") != tc.wantRetry || reason != tc.reason ||
			e.Code != tc.wantStatus || e.Status != rpccode.Code(tc.code).String() {
			t.Errorf("%s (%s, %s): %d Retry-After %q body %+v reason %q; want %d, %q, %s", tc.reason, tc.code, tc.delay,
				rec.Code, rec.Header().Get("Retry-After"), e, reason, tc.wantStatus, tc.wantRetry, tc.reason)
		}
	}
}

// failing answers every call with err.
type failing struct {
	hookstreamv1.UnimplementedEventServiceServer
	hookstreamv1.UnimplementedIngestServiceServer
	err error
}

func (f failing) GetEvent(context.Context, *hookstreamv1.GetEventRequest) (*hookstreamv1.GetEventResponse, error) {
	return nil, f.err
}

func (f failing) Subscribe(*hookstreamv1.SubscribeRequest, grpc.ServerStreamingServer[hookstreamv1.SubscribeResponse]) error {
	return f.err
}

func (f failing) IngestWebhook(context.Context, *hookstreamv1.IngestWebhookRequest) (*hookstreamv1.IngestWebhookResponse, error) {
	return nil, f.err
}

// newGateway serves the gateway in front of a real gRPC server (in
// memory) whose services answer every call with err.
func newGateway(t *testing.T, err error, limit int64) http.Handler {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	f := failing{err: err}
	hookstreamv1.RegisterEventServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, cerr := grpc.NewClient("passthrough:///mem",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if cerr != nil {
		t.Fatal(cerr)
	}
	t.Cleanup(func() { _ = conn.Close() })
	h, gerr := New(context.Background(), Options{
		Ingest: f, Conn: conn, BodyLimit: limit,
		Interceptor: func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			return handler(ctx, req)
		},
	})
	if gerr != nil {
		t.Fatal(gerr)
	}
	return h
}

// Every route answers errors in the one shape: REST, the webhook route,
// a stream's error chunk, routing errors and the gateway's own limits.
func TestOneErrorShape(t *testing.T) {
	t.Parallel()
	svcErr := statusOf(codes.Unauthenticated, "API_TOKEN_INVALID", "token not known", map[string]string{"scheme": "bearer"}).Err()
	h := newGateway(t, svcErr, 64)
	for _, tc := range []struct {
		name, method, path, body string
		header                   map[string]string
		wantCode                 int
		wantStatus, wantReason   string
		wantHeader               [2]string
	}{
		{name: "REST", method: http.MethodGet, path: "/v1/events/abc",
			wantCode: 401, wantStatus: "UNAUTHENTICATED", wantReason: "API_TOKEN_INVALID", wantHeader: [2]string{"WWW-Authenticate", `Bearer realm="hookstream"`}},
		{name: "webhook", method: http.MethodPost, path: "/v1/webhooks/src", body: "{}",
			wantCode: 401, wantStatus: "UNAUTHENTICATED", wantReason: "API_TOKEN_INVALID"},
		{name: "body over the limit", method: http.MethodPost, path: "/v1/webhooks/src", body: strings.Repeat("x", 65),
			wantCode: 413, wantStatus: "INVALID_ARGUMENT", wantReason: "BODY_TOO_LARGE"},
		{name: "unknown encoding", method: http.MethodPost, path: "/v1/webhooks/src", body: "{}", header: map[string]string{"Content-Encoding": "br"},
			wantCode: 415, wantStatus: "INVALID_ARGUMENT", wantReason: "UNSUPPORTED_CONTENT_ENCODING", wantHeader: [2]string{"Accept-Encoding", "gzip"}},
		{name: "wrong method", method: http.MethodGet, path: "/v1/webhooks/src",
			wantCode: 405, wantStatus: "UNIMPLEMENTED", wantReason: "METHOD_NOT_ALLOWED", wantHeader: [2]string{"Allow", "POST"}},
		{name: "no route", method: http.MethodGet, path: "/v1/nothing",
			wantCode: 404, wantStatus: "NOT_FOUND", wantReason: "ROUTE_NOT_FOUND"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, bytes.NewReader([]byte(tc.body)))
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			e, reason := decodeError(t, rec.Body.Bytes())
			if rec.Code != tc.wantCode || e.Code != tc.wantCode || e.Status != tc.wantStatus || reason != tc.wantReason || e.Message == "" {
				t.Errorf("%d %s: want %d %s %s", rec.Code, rec.Body.String(), tc.wantCode, tc.wantStatus, tc.wantReason)
			}
			if k := tc.wantHeader[0]; k != "" && rec.Header().Get(k) != tc.wantHeader[1] {
				t.Errorf("header %s = %q, want %q", k, rec.Header().Get(k), tc.wantHeader[1])
			}
		})
	}

	// A stream's error arrives as a chunk of the same shape.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/events:subscribe", nil))
	line, _, _ := strings.Cut(rec.Body.String(), "\n")
	if e, reason := decodeError(t, []byte(line)); e.Code != 401 || e.Status != "UNAUTHENTICATED" || reason != "API_TOKEN_INVALID" {
		t.Errorf("stream error chunk %q", line)
	}
}

// The inspector's misses answer in the API's error shape.
func TestInspectorErrors(t *testing.T) {
	t.Parallel()
	inspector, err := ui.Handler(RouteError)
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(context.Background(), Options{UI: inspector})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, path, reason, allow string
		code                        int
	}{
		{http.MethodGet, "/ui/nope.js", "ROUTE_NOT_FOUND", "", http.StatusNotFound},
		{http.MethodPost, "/ui/", "METHOD_NOT_ALLOWED", "GET, HEAD", http.StatusMethodNotAllowed},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		e, reason := decodeError(t, rec.Body.Bytes())
		if rec.Code != tc.code || e.Code != tc.code || reason != tc.reason || rec.Header().Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d %s (Allow %q), want %d %s (Allow %q)", tc.method, tc.path, rec.Code, reason, rec.Header().Get("Allow"), tc.code, tc.reason, tc.allow)
		}
	}
}

// The inspector is served under /ui/ and / leads there; everything else
// still reaches the API.
func TestInspectorRoutes(t *testing.T) {
	t.Parallel()
	ui := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ui " + r.URL.Path)) })
	h, err := New(context.Background(), Options{UI: ui})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, path string
		code         int
		body, where  string
	}{
		{method: http.MethodGet, path: "/", code: http.StatusFound, where: "/ui/"},
		{method: http.MethodGet, path: "/ui/", code: http.StatusOK, body: "ui /ui/"},
		{method: http.MethodGet, path: "/ui/app.js", code: http.StatusOK, body: "ui /ui/app.js"},
		{method: http.MethodGet, path: "/ui", code: http.StatusOK, body: "ui /ui"},
		{method: http.MethodPost, path: "/", code: http.StatusNotFound, body: "ROUTE_NOT_FOUND"},
		{method: http.MethodGet, path: "/uix", code: http.StatusNotFound, body: "ROUTE_NOT_FOUND"},
		{method: http.MethodGet, path: "/healthz", code: http.StatusOK, body: `"ok"`},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.body) || rec.Header().Get("Location") != tc.where {
			t.Errorf("%s %s: %d %q (Location %q), want %d with %q (Location %q)", tc.method, tc.path,
				rec.Code, rec.Body.String(), rec.Header().Get("Location"), tc.code, tc.body, tc.where)
		}
	}
}
