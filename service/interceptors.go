package service

import (
	"context"
	"errors"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"buf.build/go/protovalidate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/auth"
)

// Interceptors is the chain every call passes, whether it arrives over gRPC
// or through the HTTP gateway: panic recovery, logging and metrics, API
// token checks, and protovalidate checks of requests.
type Interceptors struct {
	Logger    *slog.Logger
	Validator protovalidate.Validator
	Metrics   *Metrics
	// Tokens are the API tokens. Nil fails closed, like an empty set:
	// every call that needs a scope is refused.
	Tokens *auth.APITokens
}

// requiredScope says which API scope a method needs. The webhook route
// carries vendor credentials instead, checked by the ingest service;
// health checks and reflection are open, as load balancers and grpcurl
// expect. Anything not listed (a future service) needs admin.
func requiredScope(method string) auth.APIScope {
	switch {
	case method == hookstreamv1.IngestService_IngestWebhook_FullMethodName,
		strings.HasPrefix(method, "/grpc.health.v1."),
		strings.HasPrefix(method, "/grpc.reflection."):
		return auth.ScopeNone
	case strings.HasPrefix(method, "/hookstream.v1.EventService/"):
		return auth.ScopeRead
	case method == hookstreamv1.EndpointService_GetEndpoint_FullMethodName,
		method == hookstreamv1.EndpointService_ListEndpoints_FullMethodName,
		method == hookstreamv1.EndpointService_ListDeliveryAttempts_FullMethodName,
		method == hookstreamv1.EndpointService_ListDeadLetters_FullMethodName:
		// Reading endpoints shows no secret; GetEndpointSecret and every
		// change need admin.
		return auth.ScopeRead
	case method == hookstreamv1.SourceService_ListSources_FullMethodName:
		// Sources are listed with their credentials masked;
		// GetSourceCredentials needs admin.
		return auth.ScopeRead
	case strings.HasPrefix(method, "/hookstream.v1.QuarantineService/"):
		// Quarantined bodies are raw vendor payloads, and reprocess and
		// discard change what is stored.
		return auth.ScopeAdmin
	case strings.HasPrefix(method, "/hookstream.v1.AdminService/"):
		// Replays read raw vendor payloads and append to the log.
		return auth.ScopeAdmin
	}
	return auth.ScopeAdmin
}

// authorize checks the bearer token in ctx against what method needs,
// and returns ctx with the token's name (see apiToken).
func (ic Interceptors) authorize(ctx context.Context, method string) (context.Context, error) {
	need := requiredScope(method)
	if need == auth.ScopeNone {
		return ctx, nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	values := md.Get("authorization")
	if len(values) == 0 {
		ic.Metrics.authFailures.WithLabelValues("_api", "missing").Inc()
		return ctx, errAPIToken(ReasonNoToken, "this API needs a bearer token: send the header authorization: Bearer <token>")
	}
	for _, v := range values[1:] {
		if v != values[0] {
			// Which one counts would depend on the transport's order.
			ic.Metrics.authFailures.WithLabelValues("_api", "conflicting").Inc()
			return ctx, errAPIToken(ReasonBadToken, "the call carries more than one authorization value; send one bearer token")
		}
	}
	var tok auth.APIToken
	ok := false
	if ic.Tokens != nil {
		tok, ok = ic.Tokens.Check(values[0])
	}
	if !ok {
		ic.Metrics.authFailures.WithLabelValues("_api", "wrong").Inc()
		return ctx, errAPIToken(ReasonBadToken, "the bearer token is not valid")
	}
	if tok.Scope < need {
		ic.Logger.WarnContext(ctx, "API call denied: scope", "token", tok.Name, "method", method, "needs", need.String())
		return ctx, errScope(method, need.String())
	}
	return withAPIToken(ctx, tok.Name, tok.Scope), nil
}

// Unary returns the unary chain as one interceptor.
func (ic Interceptors) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		start := time.Now()
		defer func() {
			if r := recover(); r != nil {
				ic.Logger.ErrorContext(ctx, "panic in handler", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
				err = errInternal()
			}
			ic.logCall(ctx, info.FullMethod, start, err)
		}()
		ctx, err = ic.authorize(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		if err := ic.validate(req); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// Stream returns the streaming chain as one interceptor.
func (ic Interceptors) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		start := time.Now()
		ctx := ss.Context()
		defer func() {
			if r := recover(); r != nil {
				ic.Logger.ErrorContext(ctx, "panic in stream handler", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
				err = errInternal()
			}
			ic.logCall(ctx, info.FullMethod, start, err)
		}()
		ctx, err = ic.authorize(ctx, info.FullMethod)
		if err != nil {
			return err
		}
		return handler(srv, &validatingStream{ServerStream: ss, ic: ic, ctx: ctx})
	}
}

func (ic Interceptors) validate(req any) error {
	m, ok := req.(proto.Message)
	if !ok || ic.Validator == nil {
		return nil
	}
	if err := ic.Validator.Validate(m); err != nil {
		var verr *protovalidate.ValidationError
		if errors.As(err, &verr) && len(verr.Violations) > 0 {
			v := verr.Violations[0].Proto
			msg := v.GetMessage()
			if path := protovalidate.FieldPathString(v.GetField()); path != "" { // a message-level rule names no field
				msg = path + ": " + msg
				if od := m.ProtoReflect().Descriptor().Oneofs().ByName(protoreflect.Name(path)); od != nil {
					// A oneof has no field of its own: say which it holds.
					names := make([]string, od.Fields().Len())
					for i := range names {
						names[i] = string(od.Fields().Get(i).Name())
					}
					msg += " (set one of " + strings.Join(names, ", ") + ")"
				}
			}
			return errInvalid(ReasonInvalidRequest, msg)
		}
		return errInvalid(ReasonInvalidRequest, "request failed validation")
	}
	return nil
}

func (ic Interceptors) logCall(ctx context.Context, method string, start time.Time, err error) {
	code := status.Code(err)
	if ic.Metrics != nil {
		ic.Metrics.rpcs.WithLabelValues(method, code.String()).Inc()
	}
	level := slog.LevelDebug
	if err != nil {
		level = slog.LevelInfo
	}
	if ic.Logger.Enabled(ctx, level) {
		ic.Logger.Log(ctx, level, "rpc", "method", method, "code", code.String(), "duration", time.Since(start))
	}
}

// validatingStream validates each message a client sends on a stream, and
// carries the context authorize returned.
type validatingStream struct {
	grpc.ServerStream
	ic  Interceptors
	ctx context.Context
}

func (s *validatingStream) Context() context.Context { return s.ctx }

func (s *validatingStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return s.ic.validate(m)
}
