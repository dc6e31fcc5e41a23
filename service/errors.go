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
	ReasonLookupBudget     = "LOOKUP_BUDGET_EXHAUSTED"
	ReasonEntryNotFound    = "QUARANTINE_ENTRY_NOT_FOUND"
	ReasonShuttingDown     = "SHUTTING_DOWN"
	ReasonInvalidRequest   = "INVALID_REQUEST"
	ReasonInternal         = "INTERNAL"
	ReasonRateLimited      = "RATE_LIMITED"
	ReasonStalled          = "SUBSCRIBER_STALLED"
	ReasonFilterBudget     = "FILTER_BUDGET_SPENT"
	ReasonCursorPastEnd    = "CURSOR_PAST_END"
	ReasonTooManyStreams   = "TOO_MANY_STREAMS"
	ReasonNoToken          = "API_TOKEN_REQUIRED"
	ReasonBadToken         = "API_TOKEN_INVALID"
	ReasonScope            = "API_SCOPE_INSUFFICIENT"
	// ReasonQuarantineFull: an authenticated request could not be
	// normalized and the quarantine is at its size limit, so it was not
	// stored; answered 503 with Retry-After so the vendor delivers it again.
	ReasonQuarantineFull = "QUARANTINE_FULL"
	ReasonBodyTooLarge   = "BODY_TOO_LARGE"
	ReasonBodyEncoding   = "UNSUPPORTED_CONTENT_ENCODING"
)

// RetryAfter is the delay suggested to clients when the log is unavailable.
const RetryAfter = 5 * time.Second

// QuarantineFullRetryAfter is the delay suggested to a vendor whose
// request found the quarantine full. Room comes back only when entries age
// out or an operator discards some, so retrying sooner would not help.
const QuarantineFullRetryAfter = time.Minute

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

func errQuarantineFull(source string) error {
	return statusError(codes.Unavailable, ReasonQuarantineFull, map[string]string{"source": source},
		"the request could not be normalized and the quarantine is full, so it was not stored; retry later",
		&errdetails.RetryInfo{RetryDelay: durationpb.New(QuarantineFullRetryAfter)})
}

func errLogUnreadable() error {
	return statusError(codes.Unavailable, ReasonLogUnavailable, nil,
		"the event log cannot be read right now; retry later",
		&errdetails.RetryInfo{RetryDelay: durationpb.New(RetryAfter)})
}

// errFilterBudget ends a ListEvents page whose filter used up the request's
// evaluation budget; next is where a narrower request can go on from.
func errFilterBudget(next string) error {
	return statusError(codes.ResourceExhausted, ReasonFilterBudget, map[string]string{"next_page_token": next},
		"the filter is too costly to evaluate over this many events in one request: narrow it (event.source, "+
			"event.vendor, event.type equalities are checked by the log for free), lower page_size, or go on from next_page_token")
}

// errPastEnd refuses a cursor beyond the log's last position: it was never
// handed out by this log, or the log lost the events after it (see the
// event log's damage report), and waiting on it would be silence.
func errPastEnd(seq, last uint64) error {
	return statusError(codes.OutOfRange, ReasonCursorPastEnd,
		map[string]string{"cursor": strconv.FormatUint(seq, 10), "last_cursor": strconv.FormatUint(last, 10)},
		fmt.Sprintf("cursor %d is past the log's last position %d: the log lost the events after it, or the cursor "+
			"comes from another log; resume from last_cursor, or from a start time", seq, last))
}

// errPageTokenPastEnd is errPastEnd for a ListEvents page token, the
// next position to read: its metadata has the token as sent, and the
// page_token that reads on from the log's last event.
func errPageTokenPastEnd(token, last uint64) error {
	next := strconv.FormatUint(last+1, 10)
	return statusError(codes.OutOfRange, ReasonCursorPastEnd,
		map[string]string{"cursor": strconv.FormatUint(token, 10), "last_cursor": strconv.FormatUint(last, 10), "next_page_token": next},
		fmt.Sprintf("page_token %d is past the log's end (its last position is %d): the log lost the events after it, or the token "+
			"comes from another log; go on with page_token %s (what is stored from now on), or list again from a start time", token, last, next))
}

func errInvalid(reason, msg string) error {
	return statusError(codes.InvalidArgument, reason, nil, msg)
}

func errNotFound(reason, msg string) error {
	return statusError(codes.NotFound, reason, nil, msg)
}

// errEventNotFound says no event with the id is in the log or, when the
// request gave one, in its time range (zero bounds are open).
func errEventNotFound(id string, after, before time.Time) error {
	md := map[string]string{}
	msg := "no event with id " + id
	switch {
	case after.IsZero() && before.IsZero():
		msg += " in the log (it may have aged out of it)"
	case before.IsZero():
		msg += " was received at or after " + rfc3339(after)
	case after.IsZero():
		msg += " was received at or before " + rfc3339(before)
	default:
		msg += " was received between " + rfc3339(after) + " and " + rfc3339(before)
	}
	if !after.IsZero() {
		md["received_after"] = rfc3339(after)
	}
	if !before.IsZero() {
		md["received_before"] = rfc3339(before)
	}
	return statusError(codes.NotFound, ReasonEventNotFound, md, msg)
}

// errLookupBudget says a GetEvent spent its budget of log reads without
// finding the id or covering its range: every event stored from searched
// to upTo was checked, and about reach of the log fits the budget (zero:
// unknown). FAILED_PRECONDITION, not NOT_FOUND: the event may exist, and
// the same request gets the same answer until it is narrowed.
func errLookupBudget(id string, budget, reads int, searched, upTo time.Time, reach time.Duration) error {
	md := map[string]string{
		"budget":        strconv.Itoa(budget),
		"reads":         strconv.Itoa(reads),
		"searched_from": rfc3339(searched),
		"searched_to":   rfc3339(upTo),
	}
	msg := fmt.Sprintf("event %s was not found within the lookup budget of %d log reads, which covered the events received from %s to %s; "+
		"it may be older: retry with received_after and received_before around when it was received", id, budget, rfc3339(searched), rfc3339(upTo))
	if reach > 0 {
		md["budget_reach"] = reach.Round(time.Second).String()
		msg += fmt.Sprintf(" (a range of about %s fits the budget)", reach.Round(time.Minute))
	}
	return statusError(codes.FailedPrecondition, ReasonLookupBudget, md, msg)
}

// errAttemptsBudget says the attempts of an event cannot be listed by
// event: the event is older than the dedup index, and the log search that
// would find where its attempts are kept spent its budget first. The
// endpoint's list still has them.
func errAttemptsBudget(eventID string) error {
	return statusError(codes.FailedPrecondition, ReasonLookupBudget, map[string]string{"event_id": eventID}, fmt.Sprintf(
		"event %s is older than the dedup index and was not found within log.lookup_budget reads, "+
			"so its attempts cannot be found by event; list the endpoint's attempts instead", eventID))
}

// rfc3339 writes a time as given, to the nanosecond: an error's range is
// the one the client sent.
func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

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
