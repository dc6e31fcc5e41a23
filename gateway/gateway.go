// Package gateway is hookstream's HTTP face: the raw webhook route, the
// REST mapping of the read APIs (grpc-gateway), health and the OpenAPI
// document.
package gateway

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
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
	// BodyLimit caps webhook bodies; larger ones get 413.
	BodyLimit int64
	// Ready reports whether the event log can take writes (for /healthz).
	Ready func() bool
	// OpenAPI is served at /openapi.json.
	OpenAPI []byte
	// Metrics is served at /metrics to requests MetricsAuth admits.
	Metrics     http.Handler
	MetricsAuth func(*http.Request) bool
}

// New returns the HTTP handler.
func New(ctx context.Context, o Options) (http.Handler, error) {
	mux := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.HTTPBodyMarshaler{Marshaler: &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: true},
		}}),
		runtime.WithIncomingHeaderMatcher(headerMatcher),
	)
	wh := &webhooks{o: o}
	if err := mux.HandlePath(http.MethodPost, "/v1/webhooks/{source}", wh.serve); err != nil {
		return nil, err
	}
	if err := hookstreamv1.RegisterEventServiceHandlerClient(ctx, mux, hookstreamv1.NewEventServiceClient(o.Conn)); err != nil {
		return nil, err
	}
	if err := hookstreamv1.RegisterQuarantineServiceHandlerClient(ctx, mux, hookstreamv1.NewQuarantineServiceClient(o.Conn)); err != nil {
		return nil, err
	}
	if err := mux.HandlePath(http.MethodGet, "/healthz", func(w http.ResponseWriter, _ *http.Request, _ map[string]string) {
		if o.Ready != nil && !o.Ready() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": "event log not reachable"})
			return
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
				writeError(w, http.StatusUnauthorized, "API_TOKEN_REQUIRED", "metrics need a bearer token with scope read")
				return
			}
			o.Metrics.ServeHTTP(w, r)
		}); err != nil {
			return nil, err
		}
	}
	return mux, nil
}

// headerMatcher forwards the Authorization header to the gRPC handlers
// (for API tokens) and grpc-gateway's defaults otherwise.
func headerMatcher(key string) (string, bool) {
	if http.CanonicalHeaderKey(key) == "Authorization" {
		return "authorization", true
	}
	return runtime.DefaultHeaderMatcher(key)
}

type webhooks struct{ o Options }

// ingestInfo describes the in-process call to the interceptors.
var ingestInfo = &grpc.UnaryServerInfo{FullMethod: hookstreamv1.IngestService_IngestWebhook_FullMethodName}

// serve handles POST /v1/webhooks/{source}: the exact body bytes and the
// auth-relevant headers and parameters go to IngestWebhook.
func (h *webhooks) serve(w http.ResponseWriter, r *http.Request, params map[string]string) {
	body, err := readBody(w, r, h.o.BodyLimit)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, "BODY_TOO_LARGE",
				"request body exceeds the limit of "+strconv.FormatInt(h.o.BodyLimit, 10)+" bytes")
			return
		}
		if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
			writeError(w, http.StatusRequestTimeout, "BODY_TIMEOUT", "the request body did not arrive within the server's read timeout")
			return
		}
		writeError(w, http.StatusBadRequest, "BODY_UNREADABLE", "could not read the request body")
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
			writeError(w, http.StatusRequestEntityTooLarge, "BODY_TOO_LARGE",
				"decompressed request body exceeds the limit of "+strconv.FormatInt(h.o.BodyLimit, 10)+" bytes")
		case errors.As(err, &unsupported):
			w.Header().Set("Accept-Encoding", "gzip")
			writeError(w, http.StatusUnsupportedMediaType, "UNSUPPORTED_CONTENT_ENCODING",
				"Content-Encoding "+strconv.Quote(string(unsupported))+" is not supported: send the body uncompressed or with Content-Encoding: gzip")
		default:
			writeError(w, http.StatusBadRequest, "BODY_UNREADABLE", "the request body is not valid gzip (Content-Encoding: gzip)")
		}
		return
	}
	req := &hookstreamv1.IngestWebhookRequest{
		Source: params["source"],
		Body:   &httpbody.HttpBody{ContentType: r.Header.Get("Content-Type"), Data: body},
	}
	if v := r.Header.Get("Authorization"); v != "" {
		req.Headers = map[string]string{"authorization": v}
	}
	if v := r.Header.Get("X-Hookstream-Token"); v != "" {
		if req.Headers == nil {
			req.Headers = map[string]string{}
		}
		req.Headers["x-hookstream-token"] = v
	}
	if r.URL.RawQuery != "" {
		q := r.URL.Query()
		for _, k := range [...]string{"token", "handshake_key"} {
			if q.Has(k) {
				if req.Params == nil {
					req.Params = map[string]string{}
				}
				req.Params[k] = q.Get(k)
			}
		}
	}
	out, err := h.o.Interceptor(r.Context(), req, ingestInfo, func(ctx context.Context, req any) (any, error) {
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

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Reason  string `json:"reason"`
		Message string `json:"message"`
	} `json:"error"`
}

// readBody reads the whole body, up to limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	rd := http.MaxBytesReader(w, r.Body, limit)
	if n := r.ContentLength; n > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	} else if n > 0 {
		buf := make([]byte, n)
		if _, err := io.ReadFull(rd, buf); err != nil {
			return nil, err
		}
		// Anything past Content-Length is not part of this request.
		return buf, nil
	}
	return io.ReadAll(rd)
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

// httpStatus maps gRPC codes to HTTP statuses for the webhook route.
// Vendors only look at 2xx or not; the body says why.
var httpStatus = map[codes.Code]int{
	codes.InvalidArgument:    http.StatusBadRequest,
	codes.Unauthenticated:    http.StatusUnauthorized,
	codes.PermissionDenied:   http.StatusForbidden,
	codes.NotFound:           http.StatusNotFound,
	codes.ResourceExhausted:  http.StatusTooManyRequests,
	codes.FailedPrecondition: http.StatusBadRequest,
	codes.Unavailable:        http.StatusServiceUnavailable,
	codes.DeadlineExceeded:   http.StatusServiceUnavailable,
	codes.Canceled:           499, // client closed the request
}

// reasonStatus refines httpStatus for errors whose HTTP status is more
// specific than their gRPC code.
var reasonStatus = map[string]int{
	"BODY_TOO_LARGE":               http.StatusRequestEntityTooLarge,
	"UNSUPPORTED_CONTENT_ENCODING": http.StatusUnsupportedMediaType,
}

func writeStatus(w http.ResponseWriter, err error) {
	st := status.Convert(err)
	code, ok := httpStatus[st.Code()]
	if !ok {
		code = http.StatusInternalServerError
	}
	reason := st.Code().String()
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			reason = d.GetReason()
			// Basic sources get a challenge, so clients that wait for one
			// send their credentials. A failure that names no scheme comes
			// from a server hiding which sources exist
			// (api.unknown_source: unauthorized): every such answer gets
			// the same challenge, for unknown sources too.
			if scheme, named := d.GetMetadata()["scheme"]; st.Code() == codes.Unauthenticated && (!named || scheme == "basic") {
				w.Header().Set("WWW-Authenticate", `Basic realm="hookstream", charset="UTF-8"`)
			}
			if s, ok := reasonStatus[reason]; ok {
				code = s
			}
		case *errdetails.RetryInfo:
			secs := int64(d.GetRetryDelay().AsDuration().Round(time.Second) / time.Second)
			w.Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
		}
	}
	if code == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "5")
	}
	writeError(w, code, reason, st.Message())
}

func writeError(w http.ResponseWriter, code int, reason, msg string) {
	var b errorBody
	b.Error.Code = http.StatusText(code)
	b.Error.Reason = reason
	b.Error.Message = msg
	writeJSON(w, code, b)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
