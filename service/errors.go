// Package service implements hookstream's gRPC services: webhook ingest,
// the event log's read and stream APIs, and quarantine management.
package service

import (
	"fmt"
	"strconv"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"
)

// ErrorDomain is the ErrorInfo domain of every error hookstream returns.
const ErrorDomain = "hookstream.dev"

// Error reasons, the stable machine-readable part of every error.
const (
	ReasonUnknownSource    = "UNKNOWN_SOURCE"
	ReasonUnauthenticated  = "UNAUTHENTICATED"
	ReasonLogUnavailable   = "LOG_UNAVAILABLE"
	ReasonInvalidFilter    = "INVALID_FILTER"
	ReasonInvalidCursor    = "INVALID_CURSOR"
	ReasonInvalidPageToken = "INVALID_PAGE_TOKEN"
	ReasonEventNotFound    = "EVENT_NOT_FOUND"
	ReasonEntryNotFound    = "QUARANTINE_ENTRY_NOT_FOUND"
	ReasonShuttingDown     = "SHUTTING_DOWN"
	ReasonInvalidRequest   = "INVALID_REQUEST"
	ReasonInternal         = "INTERNAL"
	ReasonRateLimited      = "RATE_LIMITED"
	ReasonStalled          = "SUBSCRIBER_STALLED"
	ReasonNoToken          = "API_TOKEN_REQUIRED"
	ReasonBadToken         = "API_TOKEN_INVALID"
	ReasonScope            = "API_SCOPE_INSUFFICIENT"
	ReasonBodyTooLarge     = "BODY_TOO_LARGE"
	ReasonBodyEncoding     = "UNSUPPORTED_CONTENT_ENCODING"
)

// RetryAfter is the delay suggested to clients when the log is unavailable.
const RetryAfter = 5 * time.Second

// statusError builds a status with an ErrorInfo carrying reason and
// metadata, plus any further details. Messages never carry secrets or
// payload bytes.
func statusError(code codes.Code, reason string, md map[string]string, msg string, details ...protoadapt.MessageV1) error {
	st := status.New(code, msg)
	all := append([]protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: reason, Domain: ErrorDomain, Metadata: md}}, details...)
	if withDetails, err := st.WithDetails(all...); err == nil {
		st = withDetails
	}
	return st.Err()
}

func errUnknownSource(name string) error {
	return statusError(codes.NotFound, ReasonUnknownSource, map[string]string{"source": name},
		fmt.Sprintf("no source named %q is configured", name))
}

func errUnauthenticated(scheme, why string) error {
	return statusError(codes.Unauthenticated, ReasonUnauthenticated, map[string]string{"scheme": scheme}, why)
}

// errHiddenUnauthenticated is the one answer, with api.unknown_source:
// unauthorized, to an unknown source and to any failed authentication: no
// scheme, no detail, so nothing tells a real source from a made-up one.
func errHiddenUnauthenticated() error {
	return statusError(codes.Unauthenticated, ReasonUnauthenticated, nil, "missing or wrong credentials")
}

func errBodyTooLarge(size int, limit int64) error {
	return statusError(codes.InvalidArgument, ReasonBodyTooLarge, map[string]string{"limit": strconv.FormatInt(limit, 10)},
		fmt.Sprintf("request body is %d bytes, above the limit of %d bytes (http.body_limit)", size, limit))
}

func errCompressedBody() error {
	return statusError(codes.InvalidArgument, ReasonBodyEncoding, nil,
		"request body is compressed; compressed bodies cannot be checked for secrets: send it uncompressed "+
			"(over HTTP, Content-Encoding: gzip is decoded first)")
}

func errLogUnavailable() error {
	return statusError(codes.Unavailable, ReasonLogUnavailable, nil,
		"the event log cannot take the write right now; retry later",
		&errdetails.RetryInfo{RetryDelay: durationpb.New(RetryAfter)})
}

func errLogUnreadable() error {
	return statusError(codes.Unavailable, ReasonLogUnavailable, nil,
		"the event log cannot be read right now; retry later",
		&errdetails.RetryInfo{RetryDelay: durationpb.New(RetryAfter)})
}

func errInvalid(reason, msg string) error {
	return statusError(codes.InvalidArgument, reason, nil, msg)
}

func errNotFound(reason, msg string) error {
	return statusError(codes.NotFound, reason, nil, msg)
}

func errShuttingDown() error {
	return statusError(codes.Unavailable, ReasonShuttingDown, nil,
		"server is shutting down; reconnect and resume from your last cursor",
		&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Second)})
}

func errInternal() error {
	return statusError(codes.Internal, ReasonInternal, nil, "internal error; see the server log")
}

func errRateLimited(source string, wait time.Duration) error {
	return statusError(codes.ResourceExhausted, ReasonRateLimited, map[string]string{"source": source},
		"source "+source+" is over its rate limit; retry later",
		&errdetails.RetryInfo{RetryDelay: durationpb.New(max(wait, time.Second))})
}

func errStalled(after time.Duration, cursor string) error {
	msg := fmt.Sprintf("subscriber accepted nothing for %s and was dropped; resubscribe with after_cursor set to the last cursor you processed", after)
	if cursor != "" {
		msg += fmt.Sprintf(" (the last one sent was %q)", cursor)
	}
	return statusError(codes.ResourceExhausted, ReasonStalled, map[string]string{"last_cursor": cursor}, msg)
}

func errAPIToken(reason, msg string) error {
	return statusError(codes.Unauthenticated, reason, nil, msg)
}

func errScope(method string, need string) error {
	return statusError(codes.PermissionDenied, ReasonScope, map[string]string{"required_scope": need},
		"this API token may not call "+method+"; it needs scope "+need)
}
