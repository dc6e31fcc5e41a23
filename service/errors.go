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
	ReasonTooManyStreams   = "TOO_MANY_STREAMS"
	ReasonNoToken          = "API_TOKEN_REQUIRED"
	ReasonBadToken         = "API_TOKEN_INVALID"
	ReasonScope            = "API_SCOPE_INSUFFICIENT"
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
	msg := fmt.Sprintf("subscriber accepted no data for %s and was dropped; resubscribe with after_cursor set to the last cursor you processed", after)
	if cursor != "" {
		msg += fmt.Sprintf(" (the last one sent was %q)", cursor)
	}
	return statusError(codes.ResourceExhausted, ReasonStalled, map[string]string{"last_cursor": cursor}, msg)
}

// errTooManyStreams refuses a stream beyond a cap; scope is "process"
// (all streams of this server) or "token" (the caller's API token).
func errTooManyStreams(scope string, limit int) error {
	what := "this server"
	if scope == "token" {
		what = "this API token"
	}
	return statusError(codes.ResourceExhausted, ReasonTooManyStreams, map[string]string{"scope": scope, "limit": strconv.Itoa(limit)},
		fmt.Sprintf("%s already has %d open event streams, its limit; close one or retry later", what, limit),
		&errdetails.RetryInfo{RetryDelay: durationpb.New(RetryAfter)})
}

func errAPIToken(reason, msg string) error {
	return statusError(codes.Unauthenticated, reason, nil, msg)
}

func errScope(method string, need string) error {
	return statusError(codes.PermissionDenied, ReasonScope, map[string]string{"required_scope": need},
		"this API token may not call "+method+"; it needs scope "+need)
}
