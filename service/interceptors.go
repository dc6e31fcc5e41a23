package service

import (
	"context"
	"errors"
	"log/slog"
	"runtime/debug"
	"time"

	"buf.build/go/protovalidate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Interceptors is the chain every call passes, whether it arrives over gRPC
// or through the HTTP gateway: panic recovery, request logging, and
// protovalidate checks of requests.
type Interceptors struct {
	Logger    *slog.Logger
	Validator protovalidate.Validator
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
		return handler(srv, &validatingStream{ServerStream: ss, ic: ic})
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
			return errInvalid(ReasonInvalidRequest, protovalidate.FieldPathString(v.GetField())+": "+v.GetMessage())
		}
		return errInvalid(ReasonInvalidRequest, "request failed validation")
	}
	return nil
}

func (ic Interceptors) logCall(ctx context.Context, method string, start time.Time, err error) {
	code := status.Code(err)
	level := slog.LevelDebug
	if err != nil {
		level = slog.LevelInfo
	}
	ic.Logger.Log(ctx, level, "rpc", "method", method, "code", code.String(), "duration", time.Since(start))
}

// validatingStream validates each message a client sends on a stream.
type validatingStream struct {
	grpc.ServerStream
	ic Interceptors
}

func (s *validatingStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return s.ic.validate(m)
}
