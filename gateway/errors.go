package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	rpccode "google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
)

// ErrorDomain is the ErrorInfo domain of the errors the gateway raises
// itself (the services use the same one).
const ErrorDomain = "hookstream.dev"

// Every error hookstream answers over HTTP — webhook route, REST, stream,
// routing — has one shape, the Google JSON error format (AIP-193):
//
//	{"error": {"code": 401, "status": "UNAUTHENTICATED", "message": "…",
//	  "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
//	    "reason": "UNAUTHENTICATED", "domain": "hookstream.dev", "metadata": {…}}]}}
//
// code is the HTTP status, status the gRPC code's name, and the details
// are the gRPC status details as protojson.
type errorJSON struct {
	Error errorFields `json:"error"`
}

type errorFields struct {
	Code    int               `json:"code"`
	Status  string            `json:"status"`
	Message string            `json:"message"`
	Details []json.RawMessage `json:"details,omitempty"`
}

// reasonStatus overrides the HTTP status for reasons more specific than
// their gRPC code.
var reasonStatus = map[string]int{
	"BODY_TOO_LARGE":               http.StatusRequestEntityTooLarge, // InvalidArgument would be 400
	"UNSUPPORTED_CONTENT_ENCODING": http.StatusUnsupportedMediaType,  // InvalidArgument would be 400
	"BODY_TIMEOUT":                 http.StatusRequestTimeout,        // DeadlineExceeded would be 504: the client was slow, not us
	"METHOD_NOT_ALLOWED":           http.StatusMethodNotAllowed,      // Unimplemented would be 501
}

// HTTPStatus is the HTTP status hookstream answers for st: grpc-gateway's
// runtime.HTTPStatusFromCode, with the overrides of reasonStatus.
func HTTPStatus(st *status.Status) int {
	if info := errorInfo(st); info != nil {
		if code, ok := reasonStatus[info.GetReason()]; ok {
			return code
		}
	}
	return runtime.HTTPStatusFromCode(st.Code())
}

func errorInfo(st *status.Status) *errdetails.ErrorInfo {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	return nil
}

// statusOf builds the status of an error the gateway raises itself.
func statusOf(code codes.Code, reason, msg string, md map[string]string, details ...protoadapt.MessageV1) *status.Status {
	st := status.New(code, msg)
	all := append([]protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: reason, Domain: ErrorDomain, Metadata: md}}, details...)
	if withDetails, err := st.WithDetails(all...); err == nil {
		return withDetails
	}
	return st
}

// errorBody renders st in the one error shape.
func errorBody(st *status.Status, httpCode int) errorJSON {
	e := errorJSON{Error: errorFields{Code: httpCode, Status: rpccode.Code(st.Code()).String(), Message: st.Message()}}
	for _, d := range st.Proto().GetDetails() {
		if b, err := protojson.Marshal(d); err == nil {
			e.Error.Details = append(e.Error.Details, b)
		}
	}
	return e
}

// writeStatus answers err (a gRPC status) in the one error shape, with the
// headers its details ask for: Retry-After from RetryInfo (and 5 s on any
// 503 without one), a Bearer challenge on API token failures, and a Basic
// challenge on authentication failures of Basic sources, or of every
// source when the server hides which exist (no scheme named).
func writeStatus(w http.ResponseWriter, err error) {
	st := status.Convert(err)
	code := HTTPStatus(st)
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			if st.Code() != codes.Unauthenticated {
				break
			}
			switch scheme, named := d.GetMetadata()["scheme"]; {
			case d.GetReason() == "API_TOKEN_REQUIRED" || d.GetReason() == "API_TOKEN_INVALID":
				// The read and admin APIs take bearer tokens.
				w.Header().Set("WWW-Authenticate", `Bearer realm="hookstream"`)
			case !named || scheme == "basic":
				// A webhook source: Basic sources get a challenge; so does
				// every failure when the server hides which sources exist
				// (no scheme named), unknown sources included.
				w.Header().Set("WWW-Authenticate", `Basic realm="hookstream", charset="UTF-8"`)
			}
		case *errdetails.RetryInfo:
			secs := int64(d.GetRetryDelay().AsDuration().Round(time.Second) / time.Second)
			w.Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
		}
	}
	if code == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "5")
	}
	writeJSON(w, code, errorBody(st, code))
}

// RouteError answers a request that no route serves, in the one error
// shape: code 405 is METHOD_NOT_ALLOWED, naming the methods of the Allow
// header the caller has set; anything else is 404 ROUTE_NOT_FOUND. The API
// routes and the inspector's (ui.Handler) answer their misses with it.
func RouteError(w http.ResponseWriter, r *http.Request, code int) {
	if code == http.StatusMethodNotAllowed {
		writeError(w, codes.Unimplemented, "METHOD_NOT_ALLOWED", r.Method+" is not allowed here; allowed: "+w.Header().Get("Allow"))
		return
	}
	writeError(w, codes.NotFound, "ROUTE_NOT_FOUND", "no route for "+r.Method+" "+r.URL.Path)
}

// writeError answers an error the gateway raises itself.
func writeError(w http.ResponseWriter, code codes.Code, reason, msg string) {
	writeStatus(w, statusOf(code, reason, msg, nil).Err())
}

// errorHandler is grpc-gateway's error handler for the REST routes.
func errorHandler(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, _ *http.Request, err error) {
	writeStatus(w, err)
}

// streamMarshaler renders the error chunk of a streaming response (which
// grpc-gateway marshals as {"error": <google.rpc.Status>}) in the one
// error shape; everything else goes to the wrapped marshaler.
type streamMarshaler struct {
	runtime.Marshaler
}

func (m streamMarshaler) Marshal(v any) ([]byte, error) {
	if chunk, ok := v.(map[string]proto.Message); ok && len(chunk) == 1 {
		if sp, ok := chunk["error"].(*spb.Status); ok {
			st := status.FromProto(sp)
			return json.Marshal(errorBody(st, HTTPStatus(st)))
		}
	}
	return m.Marshaler.Marshal(v)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
