// Package gateway is hookstream's HTTP face: the raw webhook route, the
// REST mapping of the read APIs (grpc-gateway), health and the OpenAPI
// document.
package gateway

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	otelcodes "go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// Options are the gateway's dependencies.
type Options struct {
	Logger *slog.Logger
	// Ingest is called in process for webhooks, through Interceptor, so
	// HTTP callers pass the same chain as gRPC callers without a network
	// hop or a re-encoding of the body.
	Ingest      hookstreamv1.IngestServiceServer
	Interceptor grpc.UnaryServerInterceptor
	// Conn reaches the gRPC server (in memory) for the other REST routes.
	Conn grpc.ClientConnInterface
	// Dial opens a connection to the same in-memory gRPC server, for the
	// Connect and gRPC-Web calls (HTTP/2 through a proxy); nil serves
	// neither.
	Dial func(context.Context) (net.Conn, error)
	// CORSOrigins are the origins browsers may call from (none: CORS off).
	CORSOrigins []string
	// BodyLimit caps webhook bodies; larger ones get 413.
	BodyLimit int64
	// Ready reports whether the event log can take writes (for /healthz).
	Ready func() bool
	// Degraded, when it returns text, says what is wrong with a log that
	// still works (for /healthz: 200 with status "degraded").
	Degraded func() string
	// OpenAPI is served at /openapi.json.
	OpenAPI []byte
	// Metrics is served at /metrics to requests MetricsAuth admits.
	Metrics     http.Handler
	MetricsAuth func(*http.Request) bool
	// PipedriveSources are the sources the Pipedrive-compatible webhooks
	// API (/api/v1/webhooks) subscribes to; none disables it.
	PipedriveSources []string
	// UI serves the web inspector under /ui/ (its static assets, which hold
	// no data: the inspector reads everything through the APIs, with a
	// token); GET / redirects there. Nil serves neither.
	UI http.Handler
	// TracerProvider, when set, traces webhooks (a span per request, the
	// parent of the ingest steps' spans) and REST calls; nil is tracing
	// off. Connect and gRPC-Web calls are traced by the gRPC server.
	TracerProvider trace.TracerProvider
}

// New returns the HTTP handler.
func New(ctx context.Context, o Options) (http.Handler, error) {
	var mux *runtime.ServeMux
	mux = runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, streamMarshaler{&runtime.HTTPBodyMarshaler{Marshaler: &restJSON{runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: true},
		}}}}),
		runtime.WithErrorHandler(errorHandler),
		runtime.WithIncomingHeaderMatcher(headerMatcher),
		// A POST is what it says: no route, the webhook one least, is
		// reached under another method through X-HTTP-Method-Override or
		// grpc-gateway's form POST to GET fallback.
		runtime.WithDisableHTTPMethodOverride(),
		runtime.WithDisablePathLengthFallback(),
		runtime.WithMiddlewares(probeMiddleware),
		runtime.WithRoutingErrorHandler(func(ctx context.Context, _ *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, code int) {
			if ctx.Value(probeKey{}) != nil {
				return // a probe of allowedMethods found no route
			}
			switch code {
			case http.StatusMethodNotAllowed:
				w.Header().Set("Allow", strings.Join(allowedMethods(mux, r), ", "))
				RouteError(w, r, code)
			case http.StatusNotFound:
				RouteError(w, r, code)
			default:
				runtime.DefaultRoutingErrorHandler(ctx, mux, m, w, r, code)
			}
		}),
	)
	wh := &webhooks{o: o}
	if o.TracerProvider != nil {
		wh.tracer = o.TracerProvider.Tracer(instrumentation)
	}
	if err := mux.HandlePath(http.MethodPost, "/v1/webhooks/{source}", wh.serve); err != nil {
		return nil, err
	}
	if err := hookstreamv1.RegisterEventServiceHandlerClient(ctx, mux, hookstreamv1.NewEventServiceClient(o.Conn)); err != nil {
		return nil, err
	}
	if err := hookstreamv1.RegisterQuarantineServiceHandlerClient(ctx, mux, hookstreamv1.NewQuarantineServiceClient(o.Conn)); err != nil {
		return nil, err
	}
	if err := hookstreamv1.RegisterEndpointServiceHandlerClient(ctx, mux, hookstreamv1.NewEndpointServiceClient(o.Conn)); err != nil {
		return nil, err
	}
	if err := hookstreamv1.RegisterAdminServiceHandlerClient(ctx, mux, hookstreamv1.NewAdminServiceClient(o.Conn)); err != nil {
		return nil, err
	}
	if err := hookstreamv1.RegisterSourceServiceHandlerClient(ctx, mux, hookstreamv1.NewSourceServiceClient(o.Conn)); err != nil {
		return nil, err
	}
	if len(o.PipedriveSources) > 0 {
		pd := &pipedriveAPI{endpoints: hookstreamv1.NewEndpointServiceClient(o.Conn), sources: o.PipedriveSources}
		if err := pd.register(mux); err != nil {
			return nil, err
		}
	}
	if err := mux.HandlePath(http.MethodGet, "/healthz", func(w http.ResponseWriter, _ *http.Request, _ map[string]string) {
		if o.Ready != nil && !o.Ready() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": "event log not reachable"})
			return
		}
		if o.Degraded != nil {
			if why := o.Degraded(); why != "" {
				writeJSON(w, http.StatusOK, map[string]string{"status": "degraded", "reason": why})
				return
			}
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}); err != nil {
		return nil, err
	}
	if err := mux.HandlePath(http.MethodGet, "/openapi.json", func(w http.ResponseWriter, _ *http.Request, _ map[string]string) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(o.OpenAPI)
	}); err != nil {
		return nil, err
	}
	if o.Metrics != nil {
		if err := mux.HandlePath(http.MethodGet, "/metrics", func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
			if o.MetricsAuth != nil && !o.MetricsAuth(r) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="hookstream"`)
				writeError(w, codes.Unauthenticated, "API_TOKEN_REQUIRED", "metrics need a bearer token with scope read")
				return
			}
			o.Metrics.ServeHTTP(w, r)
		}); err != nil {
			return nil, err
		}
	}
	var h http.Handler = mux
	if o.Dial != nil {
		rpc, err := newRPCHandler(o.Dial, mux)
		if err != nil {
			return nil, err
		}
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if isRPC(r) {
				// vanguard takes a unary JSON or proto POST without
				// Connect-Protocol-Version for REST; on these paths it is
				// Connect, as connect-go servers accept it (curl).
				if ct := r.Header.Get("Content-Type"); r.Method == http.MethodPost && r.Header.Get("Connect-Protocol-Version") == "" &&
					!strings.HasPrefix(ct, "application/grpc-web") && !strings.HasPrefix(ct, "application/connect+") {
					r = r.Clone(r.Context())
					r.Header.Set("Connect-Protocol-Version", "1")
				}
				rpc.ServeHTTP(w, r)
				return
			}
			mux.ServeHTTP(w, r)
		})
	}
	if o.UI != nil {
		api := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.URL.Path == "/ui" || strings.HasPrefix(r.URL.Path, "/ui/"):
				o.UI.ServeHTTP(w, r)
			case r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
				http.Redirect(w, r, "/ui/", http.StatusFound)
			default:
				api.ServeHTTP(w, r)
			}
		})
	}
	return withTracing(withCORS(limitAPIBodies(h, apiBodyLimit(o.BodyLimit)), o.CORSOrigins), o.TracerProvider), nil
}

// apiBodyLimit caps the body of an API request (REST, Connect, gRPC-Web,
// the Pipedrive-compatible API): room for a webhook body handed in through
// IngestService as base64 JSON, and far more than any other request
// needs.
func apiBodyLimit(webhookLimit int64) int64 {
	return 2*max(webhookLimit, 64<<10) + 64<<10
}

// limitAPIBodies refuses API requests whose body is larger than limit,
// before anything reads or decodes it (and so before the token is
// checked): 413 when Content-Length says so (net/http reads no more than a
// declared length), and a body that does not say its length (chunked) is
// read here, held to limit. The webhook route has its own limit.
func limitAPIBodies(next http.Handler, limit int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody && !strings.HasPrefix(r.URL.Path, "/v1/webhooks/") {
			fail := writeBodyError
			if strings.HasPrefix(r.URL.Path, "/api/v1/") {
				fail = pipedriveBodyError // the Pipedrive-compatible API answers in Pipedrive's shape
			}
			switch {
			case r.ContentLength > limit:
				fail(w, &http.MaxBytesError{Limit: limit})
				return
			case r.ContentLength < 0:
				body, err := readBody(w, r, limit)
				if err != nil {
					fail(w, err)
					return
				}
				r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
			}
		}
		next.ServeHTTP(w, r)
	})
}

// probeKey marks a request that only asks whether a route exists for its
// method and path (see allowedMethods).
type probeKey struct{}

// probeMiddleware answers probes instead of running the handler.
func probeMiddleware(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		if found, ok := r.Context().Value(probeKey{}).(*bool); ok {
			*found = true
			return
		}
		next(w, r, params)
	}
}

// allowedMethods lists the methods the mux routes for r's path, by asking
// it: the answer follows the registered routes, whatever they are.
func allowedMethods(mux *runtime.ServeMux, r *http.Request) []string {
	var allowed []string
	for _, m := range [...]string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		found := false
		probe, err := http.NewRequestWithContext(context.WithValue(r.Context(), probeKey{}, &found), m, r.URL.String(), nil)
		if err != nil {
			continue
		}
		mux.ServeHTTP(discard{}, probe)
		if found {
			allowed = append(allowed, m)
		}
	}
	return allowed
}

// discard is a ResponseWriter that drops what a probe writes.
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}

// headerMatcher forwards the Authorization header to the gRPC handlers
// (for API tokens) and grpc-gateway's defaults otherwise.
func headerMatcher(key string) (string, bool) {
	if http.CanonicalHeaderKey(key) == "Authorization" {
		return "authorization", true
	}
	return runtime.DefaultHeaderMatcher(key)
}

type webhooks struct {
	o      Options
	tracer trace.Tracer // nil: tracing off
}

// ingestInfo describes the in-process call to the interceptors.
var ingestInfo = &grpc.UnaryServerInfo{FullMethod: hookstreamv1.IngestService_IngestWebhook_FullMethodName}

// serve handles POST /v1/webhooks/{source}, in a span of its own when
// tracing is on.
func (h *webhooks) serve(w http.ResponseWriter, r *http.Request, params map[string]string) {
	if h.tracer == nil {
		h.handle(w, w, r, params)
		return
	}
	ctx, span := h.tracer.Start(r.Context(), WebhookSpan, webhookSpanOptions(r)...)
	defer span.End()
	if !span.IsRecording() {
		// Not sampled: its context still reaches the log (and from there
		// the receivers), marked so, but nothing about it is recorded.
		h.handle(w, w, r.WithContext(ctx), params)
		return
	}
	setRequestAttributes(span, r)
	sw := &statusWriter{ResponseWriter: w}
	h.handle(sw, w, r.WithContext(ctx), params)
	span.SetAttributes(semconv.HTTPResponseStatusCode(sw.status))
	if sw.status >= 500 {
		span.SetStatus(otelcodes.Error, http.StatusText(sw.status))
	}
}

// handle answers a webhook on w: the exact body bytes, read through
// bodyW (the server's own writer, which MaxBytesReader needs to close the
// connection after an oversized body), and the auth-relevant headers and
// parameters go to IngestWebhook.
func (h *webhooks) handle(w, bodyW http.ResponseWriter, r *http.Request, params map[string]string) {
	body, err := readBody(bodyW, r, h.o.BodyLimit)
	if err != nil {
		writeBodyError(w, err)
		return
	}
	// Secrets are removed from whatever is stored, which needs the plain
	// body: gzip is decoded (within the same limit), other encodings are
	// refused rather than stored unreadable.
	body, err = decodeBody(r.Header.Values("Content-Encoding"), body, h.o.BodyLimit)
	if err != nil {
		var tooLarge *http.MaxBytesError
		var unsupported unsupportedEncoding
		switch {
		case errors.As(err, &tooLarge):
			writeError(w, codes.InvalidArgument, "BODY_TOO_LARGE",
				"decompressed request body exceeds the limit of "+strconv.FormatInt(h.o.BodyLimit, 10)+" bytes")
		case errors.As(err, &unsupported):
			w.Header().Set("Accept-Encoding", "gzip")
			writeError(w, codes.InvalidArgument, "UNSUPPORTED_CONTENT_ENCODING",
				"Content-Encoding "+strconv.Quote(string(unsupported))+" is not supported: send the body uncompressed or with Content-Encoding: gzip")
		default:
			writeError(w, codes.InvalidArgument, "BODY_UNREADABLE", "the request body is not valid gzip (Content-Encoding: gzip)")
		}
		return
	}
	req := &hookstreamv1.IngestWebhookRequest{
		Source: params["source"],
		Body:   &httpbody.HttpBody{ContentType: r.Header.Get("Content-Type"), Data: body},
	}
	// A credential header or parameter sent more than once must be the
	// same every time: otherwise which copy counts would be arbitrary.
	// This is decided before the source is looked up, so it tells nothing
	// about which sources exist.
	for _, h := range [...]struct{ header, key string }{{"Authorization", "authorization"}, {"X-Hookstream-Token", "x-hookstream-token"}} {
		v, ok := single(r.Header.Values(h.header))
		if !ok {
			writeError(w, codes.InvalidArgument, "CONFLICTING_CREDENTIALS",
				"the request has different "+h.header+" headers; send it once")
			return
		}
		if v != "" {
			if req.Headers == nil {
				req.Headers = map[string]string{}
			}
			req.Headers[h.key] = v
		}
	}
	if r.URL.RawQuery != "" {
		q := r.URL.Query()
		for _, k := range [...]string{"token", "handshake_key"} {
			if !q.Has(k) {
				continue
			}
			v, ok := single(q[k])
			if !ok {
				writeError(w, codes.InvalidArgument, "CONFLICTING_CREDENTIALS",
					"the URL has different "+k+" parameters; send it once")
				return
			}
			if req.Params == nil {
				req.Params = map[string]string{}
			}
			req.Params[k] = v
		}
	}
	ctx := r.Context()
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		// Who sent it, for the service's log, as a gRPC call would say.
		ctx = peer.NewContext(ctx, &peer.Peer{Addr: net.TCPAddrFromAddrPort(ap)})
	}
	out, err := h.o.Interceptor(ctx, req, ingestInfo, func(ctx context.Context, req any) (any, error) {
		return h.o.Ingest.IngestWebhook(ctx, req.(*hookstreamv1.IngestWebhookRequest))
	})
	if err != nil {
		writeStatus(w, err)
		return
	}
	resp := out.(*hookstreamv1.IngestWebhookResponse)
	if resp.GetOutcome() == hookstreamv1.IngestOutcome_INGEST_OUTCOME_QUARANTINED {
		// 2xx on purpose: the request is stored and will not get better by
		// retrying, and Pipedrive bans endpoints that keep failing.
		writeJSON(w, http.StatusAccepted, quarantinedBody{
			Status:       "quarantined",
			QuarantineID: resp.GetQuarantineId(),
			Reason:       rejectionBody{Code: resp.GetRejection().GetCode().String(), Field: resp.GetRejection().GetField(), Message: resp.GetRejection().GetMessage()},
		})
		return
	}
	writeJSON(w, http.StatusOK, acceptedBody{Status: "accepted", EventID: resp.GetEventId(), Duplicate: resp.GetDuplicate()})
}

type acceptedBody struct {
	Status    string `json:"status"`
	EventID   string `json:"event_id"`
	Duplicate bool   `json:"duplicate"`
}

type quarantinedBody struct {
	Status       string        `json:"status"`
	QuarantineID string        `json:"quarantine_id"`
	Reason       rejectionBody `json:"reason"`
}

type rejectionBody struct {
	Code    string `json:"code"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// single returns the one value of a repeated header or parameter: all its
// copies must be the same.
func single(values []string) (string, bool) {
	for _, v := range values[min(1, len(values)):] {
		if v != values[0] {
			return "", false
		}
	}
	if len(values) == 0 {
		return "", true
	}
	return values[0], true
}

// firstRead is how much of a body is allocated before any of it arrives
// (plus bytes.MinRead, for the read that finds the end).
const firstRead = 16 << 10

// readBody reads the whole body, up to limit bytes. The buffer grows as
// bytes arrive: a declared Content-Length is only a claim until the bytes
// are here (600 connections declaring 1 MiB and sending nothing would
// otherwise hold 600 MiB for the read timeout). net/http stops the body at
// Content-Length and reports a short one as an error.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	var buf bytes.Buffer
	if n := r.ContentLength; n > 0 {
		// ReadFrom wants bytes.MinRead free before each read, also the one
		// that finds the end: without the extra room a body of exactly
		// ContentLength bytes would be copied into a buffer twice its size.
		buf.Grow(int(min(n, firstRead)) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	return buf.Bytes(), err
}

// writeBodyError answers a request whose body readBody could not read.
func writeBodyError(w http.ResponseWriter, err error) {
	writeStatus(w, bodyError(err).Err())
}

// bodyError is why readBody could not read a body: too large, too slow,
// or cut off.
func bodyError(err error) *status.Status {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return statusOf(codes.InvalidArgument, "BODY_TOO_LARGE",
			"request body exceeds the limit of "+strconv.FormatInt(tooLarge.Limit, 10)+" bytes", nil)
	}
	if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		return statusOf(codes.DeadlineExceeded, "BODY_TIMEOUT", "the request body did not arrive within the server's read timeout", nil)
	}
	return statusOf(codes.InvalidArgument, "BODY_UNREADABLE", "could not read the request body", nil)
}

// unsupportedEncoding is a Content-Encoding the webhook route does not
// decode.
type unsupportedEncoding string

func (e unsupportedEncoding) Error() string { return "unsupported content encoding " + string(e) }

// decodeBody undoes the body's Content-Encoding: none, identity or a single
// gzip. The decoded body is held to limit too, so a small compressed body
// cannot expand into a large one (a decompression bomb).
func decodeBody(encodings []string, body []byte, limit int64) ([]byte, error) {
	var codings []string
	for _, v := range encodings {
		for _, c := range strings.Split(v, ",") {
			c = strings.ToLower(strings.TrimSpace(c))
			if c != "" && c != "identity" {
				codings = append(codings, c)
			}
		}
	}
	switch {
	case len(codings) == 0:
		return body, nil
	case len(codings) > 1:
		return nil, unsupportedEncoding(strings.Join(codings, ", "))
	case codings[0] != "gzip" && codings[0] != "x-gzip":
		return nil, unsupportedEncoding(codings[0])
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(io.LimitReader(zr, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(out)) > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	return out, nil
}
