package main

import (
	"context"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Transport mix-ups (plaintext to a TLS port, TLS to a plaintext one, the
// HTTP port given as --addr) surface as grpc-go's connection errors, which
// say what went wrong on the wire but not what to change. transportHint
// adds that to the error, keeping its code.

// transportHint is what to do about err, "" when it is not a mix-up;
// usedTLS says whether the client connected with TLS.
func transportHint(err error, usedTLS bool) string {
	if status.Code(err) != codes.Unavailable {
		return ""
	}
	msg := status.Convert(err).Message()
	switch {
	case strings.Contains(msg, "looked like an HTTP/1.1 header"):
		return "that address answers HTTP/1.1, not gRPC: --addr takes the server's gRPC address (grpc.addr, default " + defaultGRPCAddr + "), not http.addr"
	case usedTLS && strings.Contains(msg, "first record does not look like a TLS handshake"):
		return "the server answers in plaintext: leave out --tls (and HOOKSTREAM_TLS, --ca, --cert)"
	case !usedTLS && strings.Contains(msg, "error reading server preface"):
		return "the server closed the connection without answering in gRPC; if it serves TLS (grpc.tls), add --tls (and --ca when its certificate is not one the system trusts)"
	}
	return ""
}

// withHint is err with the hint for it, if any.
func withHint(err error, usedTLS bool) error {
	hint := transportHint(err, usedTLS)
	if hint == "" {
		return err
	}
	st := status.Convert(err)
	return status.Error(st.Code(), st.Message()+" — "+hint)
}

// hintInterceptors add transportHint to the errors of every call on a
// connection.
func hintInterceptors(usedTLS bool) []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			return withHint(invoker(ctx, method, req, reply, cc, opts...), usedTLS)
		}),
		grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			s, err := streamer(ctx, desc, cc, method, opts...)
			if err != nil {
				return nil, withHint(err, usedTLS)
			}
			return hintedStream{s, usedTLS}, nil
		}),
	}
}

// hintedStream adds transportHint to a stream's errors.
type hintedStream struct {
	grpc.ClientStream
	usedTLS bool
}

func (s hintedStream) RecvMsg(m any) error { return withHint(s.ClientStream.RecvMsg(m), s.usedTLS) }
func (s hintedStream) SendMsg(m any) error { return withHint(s.ClientStream.SendMsg(m), s.usedTLS) }
