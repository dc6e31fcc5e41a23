package service

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/netip"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/delivery"
	"github.com/hookstream/hookstream/service/delivery/webhook"
	"github.com/hookstream/hookstream/service/eventlog"
	"github.com/hookstream/hookstream/service/filter"
)

// Endpoints implements EndpointService over the delivery engine.
type Endpoints struct {
	hookstreamv1.UnimplementedEndpointServiceServer
	store         *delivery.Store
	engine        *delivery.Engine
	events        *Events
	logger        *slog.Logger
	allowHTTP     bool
	allowNetworks []netip.Prefix
	overlap       time.Duration
	// creating serializes creates on this replica, so that concurrent
	// ones cannot all pass the delivery.max_endpoints check before any is
	// stored. Replicas sharing a cluster check each other's endpoints but
	// may each add one at the same moment.
	creating sync.Mutex
}

// EndpointOptions configure the endpoint service.
type EndpointOptions struct {
	Store     *delivery.Store
	Engine    *delivery.Engine
	AllowHTTP bool
	// AllowNetworks are the addresses delivery may reach although Blocked
	// refuses them (delivery.allow_networks).
	AllowNetworks []netip.Prefix
	// Overlap is how long a rotated-out secret keeps signing by default.
	Overlap time.Duration
}

// NewEndpoints builds the endpoint service.
func (s *Services) NewEndpoints(o EndpointOptions) *Endpoints {
	return &Endpoints{store: o.Store, engine: o.Engine, events: s.Events, logger: s.Events.logger,
		allowHTTP: o.AllowHTTP, allowNetworks: o.AllowNetworks, overlap: o.Overlap}
}

// Compile checks an endpoint filter as Subscribe checks its filter, and
// returns the log subject it narrows reads to ("" for all).
func (s *Services) Compile(expr string) (*filter.Filter, string, error) {
	f, subjects, err := s.Events.compile(expr)
	if err != nil {
		return nil, "", err
	}
	if len(subjects) == 1 {
		return f, subjects[0], nil
	}
	return f, "", nil
}

// NextEvent returns a channel closed when the log has an event after the
// returned position.
func (s *Services) NextEvent() (<-chan struct{}, uint64) { return s.Events.hub.Next() }

// TapEvents makes fn see every event the process's reader of the log
// passes on, in log order (see hub.Tap).
func (s *Services) TapEvents(fn func(eventlog.Stored)) { s.Events.hub.Tap(fn) }

// Reasons of the endpoint service's errors.
const (
	ReasonEndpointNotFound   = "ENDPOINT_NOT_FOUND"
	ReasonDeadLetterNotFound = "DEAD_LETTER_NOT_FOUND"
	ReasonInvalidEndpoint    = "INVALID_ENDPOINT"
	ReasonNoSecretKey        = "SECRET_STORAGE_NOT_CONFIGURED"
	ReasonTooManyEndpoints   = "TOO_MANY_ENDPOINTS"
	ReasonConflict           = "CONCURRENT_CHANGE"
	ReasonSecretSealed       = "SECRET_KEY_MISMATCH"
)

// reservedHeaders are set by hookstream on every delivery; an endpoint's
// own headers may not replace them.
var reservedHeaders = map[string]bool{
	"Content-Type": true, "Content-Length": true, "Host": true, "User-Agent": true, "Authorization": true,
	"Webhook-Id": true, "Webhook-Timestamp": true, "Webhook-Signature": true, "Transfer-Encoding": true,
	"Connection": true, "Te": true, "Upgrade": true, "Trailer": true, "Expect": true, "Keep-Alive": true,
	"Proxy-Authorization": true, "Proxy-Connection": true, "Cookie": true,
}

func (s *Endpoints) mapErr(ctx context.Context, err error, id string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, delivery.ErrNotFound):
		return errNotFound(ReasonEndpointNotFound, "no endpoint "+id)
	case errors.Is(err, delivery.ErrDeadLetterNotFound):
		return errNotFound(ReasonDeadLetterNotFound, "no such dead letter of endpoint "+id)
	case errors.Is(err, delivery.ErrNoSecretKey):
		return statusError(codes.FailedPrecondition, ReasonNoSecretKey, nil,
			"endpoints need delivery.secret_key in the config (to seal their signing secrets at rest), or delivery.plain_secrets: true")
	case errors.Is(err, delivery.ErrTooMany):
		return statusError(codes.ResourceExhausted, ReasonTooManyEndpoints, nil, err.Error())
	case errors.Is(err, delivery.ErrConflict):
		return statusError(codes.Aborted, ReasonConflict, nil, err.Error())
	case errors.Is(err, delivery.ErrSecretSealed):
		s.logger.ErrorContext(ctx, "an endpoint's secrets cannot be opened: was delivery.secret_key changed?", "endpoint", id)
		return statusError(codes.FailedPrecondition, ReasonSecretSealed, nil,
			"the endpoint's signing secret is sealed with another delivery.secret_key than this server's")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	}
	if _, ok := status.FromError(err); ok {
		return err // a filter's INVALID_ARGUMENT, already a status
	}
	s.logger.ErrorContext(ctx, "endpoint service failed", "endpoint", id, "err", err)
	return errLogUnavailable()
}

// check validates what protovalidate cannot: the URL's scheme, the
// headers, the filter.
func (s *Endpoints) check(ep *hookstreamv1.Endpoint, paths map[string]bool) error {
	if paths == nil || paths["url"] {
		if err := webhook.CheckURL(ep.GetUrl(), s.allowHTTP); err != nil {
			return errInvalid(ReasonInvalidEndpoint, "url: "+err.Error())
		}
		if err := webhook.CheckAddress(ep.GetUrl(), s.allowNetworks); err != nil {
			return errInvalid(ReasonInvalidEndpoint, "url: "+err.Error())
		}
	}
	if paths == nil || paths["headers"] {
		for k := range ep.GetHeaders() {
			if reservedHeaders[textproto.CanonicalMIMEHeaderKey(k)] || strings.HasPrefix(strings.ToLower(k), "webhook-") {
				return errInvalid(ReasonInvalidEndpoint, "headers: "+k+" is set by hookstream and cannot be replaced")
			}
		}
	}
	if paths == nil || paths["filter"] {
		if _, _, err := s.events.compile(ep.GetFilter()); err != nil {
			return err
		}
	}
	return nil
}

// CreateEndpoint implements the RPC.
func (s *Endpoints) CreateEndpoint(ctx context.Context, req *hookstreamv1.CreateEndpointRequest) (*hookstreamv1.CreateEndpointResponse, error) {
	in := req.GetEndpoint()
	if in.GetUrl() == "" {
		return nil, errInvalid(ReasonInvalidEndpoint, "endpoint.url is required")
	}
	if err := s.check(in, nil); err != nil {
		return nil, err
	}
	if !s.store.CanStoreSecrets() {
		return nil, s.mapErr(ctx, delivery.ErrNoSecretKey, "")
	}
	ep := proto.Clone(in).(*hookstreamv1.Endpoint)
	ep.Id = delivery.NewID("ep_")
	ep.State = hookstreamv1.EndpointState_ENDPOINT_STATE_ACTIVE
	ep.DisabledReason, ep.Secret, ep.PreviousSecretExpireTime = "", "", nil
	ep.LastAttemptTime, ep.LastAttemptStatusCode = nil, 0 // read from the attempts log, never stored
	ep.CreateTime = timestamppb.Now()
	ep.UpdateTime = ep.CreateTime
	if ep.Format == hookstreamv1.EndpointFormat_ENDPOINT_FORMAT_UNSPECIFIED {
		ep.Format = hookstreamv1.EndpointFormat_ENDPOINT_FORMAT_EVENT_JSON
	}
	if ep.Ordering == hookstreamv1.EndpointOrdering_ENDPOINT_ORDERING_UNSPECIFIED {
		ep.Ordering = hookstreamv1.EndpointOrdering_ENDPOINT_ORDERING_UNORDERED
	}
	full := &delivery.Endpoint{Endpoint: ep}
	if b := ep.GetBasicAuth(); b != nil {
		full.Password = b.GetPassword()
	}
	if err := delivery.Rotate(full, 0); err != nil {
		return nil, s.mapErr(ctx, err, ep.Id)
	}
	s.creating.Lock()
	defer s.creating.Unlock()
	// Refused before anything is recorded (the store's Create does not
	// count again).
	if err := s.store.Room(ctx); err != nil {
		return nil, s.mapErr(ctx, err, ep.Id)
	}
	// Where it starts is recorded first, so nothing stored after this
	// call returns is missed, however soon its worker starts.
	if err := s.engine.Init(ctx, ep); err != nil {
		return nil, s.mapErr(ctx, err, ep.Id)
	}
	if err := s.store.Create(ctx, full); err != nil {
		s.engine.Forget(context.WithoutCancel(ctx), ep.Id)
		return nil, s.mapErr(ctx, err, ep.Id)
	}
	s.logger.InfoContext(ctx, "endpoint created", "endpoint", ep.Id, "token", apiToken(ctx))
	return &hookstreamv1.CreateEndpointResponse{Endpoint: public(full, true)}, nil
}

// public is what responses show of an endpoint: no password, and the
// secret only when asked.
func public(e *delivery.Endpoint, withSecret bool) *hookstreamv1.Endpoint {
	out := proto.Clone(e.Endpoint).(*hookstreamv1.Endpoint)
	out.Secret = ""
	if withSecret && len(e.Secrets) > 0 {
		out.Secret = e.Secrets[0]
	}
	if out.BasicAuth != nil {
		out.BasicAuth.Password = ""
	}
	out.PreviousSecretExpireTime = nil
	for _, t := range e.Expires[min(1, len(e.Expires)):] {
		if !t.IsZero() {
			out.PreviousSecretExpireTime = timestamppb.New(t)
		}
	}
	return out
}

// GetEndpoint implements the RPC.
func (s *Endpoints) GetEndpoint(ctx context.Context, req *hookstreamv1.GetEndpointRequest) (*hookstreamv1.GetEndpointResponse, error) {
	e, err := s.store.Get(ctx, req.GetId())
	if err != nil {
		return nil, s.mapErr(ctx, err, req.GetId())
	}
	out := public(e, false)
	maskForReaders(ctx, out)
	s.lastAttempts(ctx, []*hookstreamv1.Endpoint{out})
	return &hookstreamv1.GetEndpointResponse{Endpoint: out}, nil
}

// maskForReaders hides, from a caller whose token can only read (a
// dashboard, a page in a browser), what may be a receiver's credential:
// the values of the extra headers and of the URL's query. Admins, who
// set them, see them.
func maskForReaders(ctx context.Context, ep *hookstreamv1.Endpoint) {
	if !readOnlyCaller(ctx) {
		return
	}
	for k := range ep.Headers {
		ep.Headers[k] = masked
	}
	if u, err := url.Parse(ep.GetUrl()); err == nil && u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q[k] = []string{masked}
		}
		u.RawQuery = q.Encode()
		ep.Url = u.String()
	}
}

// masked stands for a value a read token does not see.
const masked = "MASKED"

// lastAttemptTimeout bounds the last-attempt lookups of one page, and
// lastAttemptLookups how many of them run at once.
const (
	lastAttemptTimeout = 2 * time.Second
	lastAttemptLookups = 16
)

// lastAttempts sets last_attempt_time and last_attempt_status_code of the
// endpoints from the attempts log: one request per endpoint, a few at a
// time. They are for people watching their endpoints, so a lookup that
// fails leaves its endpoint's fields unset rather than failing the call.
func (s *Endpoints) lastAttempts(ctx context.Context, eps []*hookstreamv1.Endpoint) {
	// One deadline for the page: lookups that go unanswered (the log
	// reconnecting) cost the call lastAttemptTimeout, not that per endpoint.
	lctx, cancel := context.WithTimeout(ctx, lastAttemptTimeout)
	defer cancel()
	sem := make(chan struct{}, lastAttemptLookups)
	var wg sync.WaitGroup
	for _, ep := range eps {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			a, err := s.store.LastAttempt(lctx, ep.GetId())
			if err != nil {
				s.logger.DebugContext(ctx, "endpoint's last attempt not read", "endpoint", ep.GetId(), "err", err)
				return
			}
			if a != nil {
				ep.LastAttemptTime, ep.LastAttemptStatusCode = a.GetTime(), a.GetStatusCode()
			}
		})
	}
	wg.Wait()
}

// ListEndpoints implements the RPC.
func (s *Endpoints) ListEndpoints(ctx context.Context, req *hookstreamv1.ListEndpointsRequest) (*hookstreamv1.ListEndpointsResponse, error) {
	after := ""
	if t := req.GetPageToken(); t != "" {
		b, err := base64.RawURLEncoding.DecodeString(t)
		if err != nil || !strings.HasPrefix(string(b), "ep:") {
			return nil, errInvalid(ReasonInvalidPageToken, "page_token is not one this server issued")
		}
		after = strings.TrimPrefix(string(b), "ep:")
	}
	size := pageSize(req.GetPageSize())
	eps, more, err := s.store.List(ctx, after, size)
	if err != nil {
		return nil, s.mapErr(ctx, err, "")
	}
	resp := &hookstreamv1.ListEndpointsResponse{}
	for _, e := range eps {
		out := public(e, false)
		maskForReaders(ctx, out)
		resp.Endpoints = append(resp.Endpoints, out)
	}
	s.lastAttempts(ctx, resp.Endpoints)
	if more && len(eps) > 0 {
		resp.NextPageToken = base64.RawURLEncoding.EncodeToString([]byte("ep:" + eps[len(eps)-1].Id))
	}
	return resp, nil
}

// updatable are the fields UpdateEndpoint may change.
var updatable = []string{"url", "description", "filter", "headers", "basic_auth", "format", "rate_limit", "ordering", "max_in_flight"}

// snakeCase turns a field path written in JSON's lowerCamelCase
// (basicAuth.username) into the proto names (basic_auth.username); one
// in proto names is left as it is.
func snakeCase(path string) string {
	if strings.IndexFunc(path, unicode.IsUpper) < 0 {
		return path
	}
	var b strings.Builder
	for _, r := range path {
		if unicode.IsUpper(r) {
			b.WriteByte('_')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// unchangeable are the Endpoint fields an update leaves as they are:
// output only, or fixed when the endpoint was made.
var unchangeable = []string{"id", "state", "disabled_reason", "create_time", "update_time", "secret", "previous_secret_expire_time",
	"pipedrive", "last_attempt_time", "last_attempt_status_code", "start_position", "start_time"}

// UpdateEndpoint implements the RPC.
func (s *Endpoints) UpdateEndpoint(ctx context.Context, req *hookstreamv1.UpdateEndpointRequest) (*hookstreamv1.UpdateEndpointResponse, error) {
	in := req.GetEndpoint()
	paths := map[string]bool{}
	for _, asked := range req.GetUpdateMask().GetPaths() {
		p := snakeCase(asked) // REST's ?update_mask= may name fields as JSON does (maxInFlight)
		top, _, _ := strings.Cut(p, ".")
		switch {
		case p == "*": // AIP-134: every field, as an empty mask
			for _, u := range updatable {
				paths[u] = true
			}
			continue
		case slices.Contains(unchangeable, top):
			// AIP-203: output-only fields are ignored, so that what
			// GetEndpoint returned can be sent back changed (grpc-gateway
			// makes a PATCH's mask of every field in its body).
			continue
		case top == "basic_auth":
			p = top // the username and password go together
		}
		// Whole fields only: "headers" replaces every header, so a
		// sub-path such as headers.X-Team would mislead.
		if !slices.Contains(updatable, p) {
			return nil, errInvalid(ReasonInvalidEndpoint, "update_mask: "+asked+" cannot be changed (changeable, as whole fields: "+strings.Join(updatable, ", ")+")")
		}
		paths[p] = true
	}
	if len(req.GetUpdateMask().GetPaths()) == 0 {
		for _, u := range updatable {
			paths[u] = true
		}
	}
	if paths["url"] && in.GetUrl() == "" {
		return nil, errInvalid(ReasonInvalidEndpoint, "endpoint.url is required")
	}
	if err := s.check(in, paths); err != nil {
		return nil, err
	}
	e, err := s.store.Update(ctx, in.GetId(), func(e *delivery.Endpoint) error {
		ep := e.Endpoint
		for p := range paths {
			switch p {
			case "url":
				ep.Url = in.GetUrl()
			case "description":
				ep.Description = in.GetDescription()
			case "filter":
				ep.Filter = in.GetFilter()
			case "headers":
				ep.Headers = in.GetHeaders()
			case "basic_auth":
				// Responses never show the password, so an update that
				// sends none keeps the current one (for the same user);
				// an unset basic_auth removes it.
				switch b := in.GetBasicAuth(); {
				case b == nil:
					ep.BasicAuth, e.Password = nil, ""
				case b.GetPassword() != "" || ep.GetBasicAuth().GetUsername() != b.GetUsername():
					ep.BasicAuth = &hookstreamv1.BasicAuth{Username: b.GetUsername()}
					e.Password = b.GetPassword()
				}
			case "format":
				ep.Format = max(in.GetFormat(), hookstreamv1.EndpointFormat_ENDPOINT_FORMAT_EVENT_JSON)
			case "rate_limit":
				ep.RateLimit = in.GetRateLimit()
			case "ordering":
				ep.Ordering = max(in.GetOrdering(), hookstreamv1.EndpointOrdering_ENDPOINT_ORDERING_UNORDERED)
			case "max_in_flight":
				ep.MaxInFlight = in.GetMaxInFlight()
			}
		}
		return nil
	})
	if err != nil {
		return nil, s.mapErr(ctx, err, in.GetId())
	}
	s.engine.Apply(ctx, e.Id, e.Revision)
	return &hookstreamv1.UpdateEndpointResponse{Endpoint: public(e, false)}, nil
}

// DeleteEndpoint implements the RPC.
func (s *Endpoints) DeleteEndpoint(ctx context.Context, req *hookstreamv1.DeleteEndpointRequest) (*hookstreamv1.DeleteEndpointResponse, error) {
	if err := s.store.Delete(ctx, req.GetId()); err != nil {
		return nil, s.mapErr(ctx, err, req.GetId())
	}
	s.engine.Deleted(ctx, req.GetId())
	s.logger.InfoContext(ctx, "endpoint deleted", "endpoint", req.GetId(), "token", apiToken(ctx))
	return &hookstreamv1.DeleteEndpointResponse{}, nil
}

func (s *Endpoints) setState(ctx context.Context, id string, st hookstreamv1.EndpointState) (*hookstreamv1.Endpoint, error) {
	e, err := s.store.Update(ctx, id, func(e *delivery.Endpoint) error {
		e.State = st
		e.DisabledReason = ""
		return nil
	})
	if err != nil {
		return nil, s.mapErr(ctx, err, id)
	}
	s.engine.Apply(ctx, id, e.Revision)
	return public(e, false), nil
}

// PauseEndpoint implements the RPC.
func (s *Endpoints) PauseEndpoint(ctx context.Context, req *hookstreamv1.PauseEndpointRequest) (*hookstreamv1.PauseEndpointResponse, error) {
	ep, err := s.setState(ctx, req.GetId(), hookstreamv1.EndpointState_ENDPOINT_STATE_PAUSED)
	if err != nil {
		return nil, err
	}
	return &hookstreamv1.PauseEndpointResponse{Endpoint: ep}, nil
}

// ResumeEndpoint implements the RPC.
func (s *Endpoints) ResumeEndpoint(ctx context.Context, req *hookstreamv1.ResumeEndpointRequest) (*hookstreamv1.ResumeEndpointResponse, error) {
	ep, err := s.setState(ctx, req.GetId(), hookstreamv1.EndpointState_ENDPOINT_STATE_ACTIVE)
	if err != nil {
		return nil, err
	}
	return &hookstreamv1.ResumeEndpointResponse{Endpoint: ep}, nil
}

// RotateEndpointSecret implements the RPC.
func (s *Endpoints) RotateEndpointSecret(ctx context.Context, req *hookstreamv1.RotateEndpointSecretRequest) (*hookstreamv1.RotateEndpointSecretResponse, error) {
	overlap := s.overlap
	if req.GetOverlap() != nil {
		overlap = req.GetOverlap().AsDuration()
	}
	e, err := s.store.Update(ctx, req.GetId(), func(e *delivery.Endpoint) error { return delivery.Rotate(e, overlap) })
	if err != nil {
		return nil, s.mapErr(ctx, err, req.GetId())
	}
	s.engine.Apply(ctx, e.Id, e.Revision)
	s.logger.InfoContext(ctx, "endpoint secret rotated", "endpoint", e.Id, "overlap", overlap, "token", apiToken(ctx))
	return &hookstreamv1.RotateEndpointSecretResponse{Endpoint: public(e, true)}, nil
}

// GetEndpointSecret implements the RPC.
func (s *Endpoints) GetEndpointSecret(ctx context.Context, req *hookstreamv1.GetEndpointSecretRequest) (*hookstreamv1.GetEndpointSecretResponse, error) {
	e, err := s.store.Get(ctx, req.GetId())
	if err != nil {
		return nil, s.mapErr(ctx, err, req.GetId())
	}
	return &hookstreamv1.GetEndpointSecretResponse{Secret: e.Secrets[0]}, nil
}

// SendTestEvent implements the RPC.
func (s *Endpoints) SendTestEvent(ctx context.Context, req *hookstreamv1.SendTestEventRequest) (*hookstreamv1.SendTestEventResponse, error) {
	e, err := s.store.Get(ctx, req.GetId())
	if err != nil {
		return nil, s.mapErr(ctx, err, req.GetId())
	}
	a, err := s.engine.Send(ctx, e, delivery.TestEvent(time.Now()))
	if err != nil {
		return nil, s.mapErr(ctx, err, req.GetId())
	}
	return &hookstreamv1.SendTestEventResponse{Attempt: a}, nil
}

const (
	tokenAttempts = 'a' // ListDeliveryAttempts
	tokenDead     = 'd' // ListDeadLetters
	tokenRedrive  = 'v' // RedriveDeadLetters
)

func pageFrom(t string, kind byte, filters string) (uint64, error) {
	if t == "" {
		return 0, nil
	}
	tok, err := parsePageToken(t, kind, filters)
	if err != nil {
		return 0, errInvalid(ReasonInvalidPageToken, "page_token is not one this server issued for this request")
	}
	return tok.from, nil
}

func pageNext(next uint64, kind byte, filters string) string {
	if next == 0 {
		return ""
	}
	return pageToken{kind: kind, from: next}.encode(filters)
}

// ListDeliveryAttempts implements the RPC.
func (s *Endpoints) ListDeliveryAttempts(ctx context.Context, req *hookstreamv1.ListDeliveryAttemptsRequest) (*hookstreamv1.ListDeliveryAttemptsResponse, error) {
	q := delivery.AttemptQuery{Endpoint: req.GetEndpointId(), EventID: req.GetEventId()}
	filters := q.Endpoint + "\x00" + q.EventID
	if t := req.GetStartTime(); t != nil {
		q.Since = t.AsTime()
		filters += "\x00" + q.Since.UTC().Format(time.RFC3339Nano)
	}
	from, err := pageFrom(req.GetPageToken(), tokenAttempts, filters)
	if err != nil {
		return nil, err
	}
	if id := req.GetEndpointId(); id != "" {
		if _, err := s.store.Get(ctx, id); err != nil {
			return nil, s.mapErr(ctx, err, id)
		}
	}
	size := pageSize(req.GetPageSize())
	out, next, err := s.engine.Attempts(ctx, q, from, size)
	if errors.Is(err, eventlog.ErrBudgetExhausted) {
		return nil, errAttemptsBudget(req.GetEventId())
	}
	if err != nil {
		return nil, s.mapErr(ctx, err, req.GetEndpointId())
	}
	return &hookstreamv1.ListDeliveryAttemptsResponse{Attempts: out, NextPageToken: pageNext(next, tokenAttempts, filters)}, nil
}

// ListDeadLetters implements the RPC.
func (s *Endpoints) ListDeadLetters(ctx context.Context, req *hookstreamv1.ListDeadLettersRequest) (*hookstreamv1.ListDeadLettersResponse, error) {
	id := req.GetEndpointId()
	from, err := pageFrom(req.GetPageToken(), tokenDead, id)
	if err != nil {
		return nil, err
	}
	if _, err := s.store.Get(ctx, id); err != nil {
		return nil, s.mapErr(ctx, err, id)
	}
	size := pageSize(req.GetPageSize())
	out, next, err := s.engine.DeadLetters(ctx, id, from, size)
	if err != nil {
		return nil, s.mapErr(ctx, err, id)
	}
	return &hookstreamv1.ListDeadLettersResponse{DeadLetters: out, NextPageToken: pageNext(next, tokenDead, id)}, nil
}

// redriveBatch bounds the dead letters one RedriveDeadLetters call reads.
const redriveBatch = 500

// RedriveDeadLetters implements the RPC.
func (s *Endpoints) RedriveDeadLetters(ctx context.Context, req *hookstreamv1.RedriveDeadLettersRequest) (*hookstreamv1.RedriveDeadLettersResponse, error) {
	id := req.GetEndpointId()
	var start, end time.Time
	// The engine takes an empty id and no range as "all": only all: true
	// may say so (all: false, or an id left empty by an unset variable,
	// redrove everything).
	switch sel := req.GetSelector().(type) {
	case *hookstreamv1.RedriveDeadLettersRequest_All:
		if !sel.All {
			return nil, errInvalid(ReasonInvalidRequest, "all: must be true to redrive every dead letter; to redrive some, give dead_letter_id or dead_time")
		}
	case *hookstreamv1.RedriveDeadLettersRequest_DeadLetterId:
		if sel.DeadLetterId == "" {
			return nil, errInvalid(ReasonInvalidRequest, "dead_letter_id: must not be empty (all: true redrives every dead letter)")
		}
	case *hookstreamv1.RedriveDeadLettersRequest_DeadTime:
		if r := sel.DeadTime; r != nil {
			if r.GetStartTime() != nil {
				start = r.GetStartTime().AsTime()
			}
			if r.GetEndTime() != nil {
				end = r.GetEndTime().AsTime()
			}
		}
		if !start.IsZero() && !end.IsZero() && !start.Before(end) {
			return nil, errInvalid(ReasonInvalidRequest, "dead_time: start_time must be earlier than end_time")
		}
	}
	filters := id + "\x00" + start.String() + "\x00" + end.String()
	from, err := pageFrom(req.GetPageToken(), tokenRedrive, filters)
	if err != nil {
		return nil, err
	}
	if _, err := s.store.Get(ctx, id); err != nil {
		return nil, s.mapErr(ctx, err, id)
	}
	n, next, err := s.engine.Redrive(ctx, id, req.GetDeadLetterId(), start, end, from, redriveBatch)
	if err != nil {
		return nil, s.mapErr(ctx, err, id)
	}
	s.logger.InfoContext(ctx, "dead letters redriven", "endpoint", id, "count", n, "token", apiToken(ctx))
	return &hookstreamv1.RedriveDeadLettersResponse{Redriven: int32(n), NextPageToken: pageNext(next, tokenRedrive, filters)}, nil
}
