package gateway

import (
	"context"
	"errors"
	"mime"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"

	"connectrpc.com/vanguard"
	"github.com/rs/cors"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// rpcServices are the services offered over Connect and gRPC-Web on the
// HTTP port, by their full names.
var rpcServices = []string{
	hookstreamv1.IngestService_ServiceDesc.ServiceName,
	hookstreamv1.EventService_ServiceDesc.ServiceName,
	hookstreamv1.QuarantineService_ServiceDesc.ServiceName,
	hookstreamv1.EndpointService_ServiceDesc.ServiceName,
	hookstreamv1.AdminService_ServiceDesc.ServiceName,
	hookstreamv1.SourceService_ServiceDesc.ServiceName,
}

// maxRPCMessage caps one message vanguard holds while it translates
// between protocols: the in-memory connection's own receive limit.
const maxRPCMessage = 64 << 20

// newRPCHandler serves the Connect protocol and gRPC-Web: vanguard
// translates each call to gRPC and passes it over the in-memory
// connection (dial) to the same gRPC server the REST routes reach, so
// every protocol meets the same interceptors, tokens and limits.
// Anything it does not know goes to fallback.
func newRPCHandler(dial func(context.Context) (net.Conn, error), fallback http.Handler) (http.Handler, error) {
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	target := &url.URL{Scheme: "http", Host: "in-memory"}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = target.Host
		},
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) },
			Protocols:   &protocols,
			// Same flow-control window as the gRPC client connection:
			// a browser that stops reading holds back its stream.
			HTTP2: &http.HTTP2Config{MaxReceiveBufferPerStream: 64 << 10, MaxReceiveBufferPerConnection: 1 << 20},
		},
		// Streams (Subscribe) reach the client message by message.
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			// vanguard turns a bare 502 into the protocol's "unavailable".
			if errors.Is(err, context.Canceled) {
				return
			}
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	services := make([]*vanguard.Service, 0, len(rpcServices))
	for _, name := range rpcServices {
		services = append(services, vanguard.NewService(name, proxy,
			vanguard.WithTargetProtocols(vanguard.ProtocolGRPC),
			vanguard.WithTargetCodecs(vanguard.CodecProto),
			vanguard.WithMaxMessageBufferBytes(maxRPCMessage),
		))
	}
	return vanguard.NewTranscoder(services, vanguard.WithUnknownHandler(fallback), vanguard.WithCodec(newConnectJSON))
}

// isRPC tells Connect and gRPC-Web calls from REST requests: gRPC-Web by
// its content type, Connect by its content type on a /hookstream.v1.*
// path (REST paths start with /v1/, so the webhook route's JSON never
// matches), or a Connect GET (?connect=v1) there.
func isRPC(r *http.Request) bool {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if strings.HasPrefix(ct, "application/grpc-web") {
		return true
	}
	if !strings.HasPrefix(r.URL.Path, "/hookstream.v1.") {
		return false
	}
	switch {
	case strings.HasPrefix(ct, "application/connect+"), ct == "application/proto", ct == "application/json":
		return r.Method == http.MethodPost
	case r.Method == http.MethodGet:
		return r.URL.Query().Get("connect") == "v1"
	}
	return false
}

// withCORS answers preflights and adds CORS headers for the origins
// allowed; none leaves h as it is. The headers allowed and exposed are the
// ones REST, Connect and gRPC-Web clients need.
func withCORS(h http.Handler, origins []string) http.Handler {
	if len(origins) == 0 {
		return h
	}
	return cors.New(cors.Options{
		AllowedOrigins: origins,
		AllowedMethods: []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete},
		AllowedHeaders: []string{
			"Content-Type", "Authorization", "Connect-Protocol-Version", "Connect-Timeout-Ms",
			"Connect-Accept-Encoding", "Connect-Content-Encoding", "X-Grpc-Web", "X-User-Agent", "Grpc-Timeout",
		},
		ExposedHeaders: []string{
			"Grpc-Status", "Grpc-Message", "Grpc-Status-Details-Bin", "Connect-Accept-Encoding",
			"Connect-Content-Encoding", "Retry-After", "Allow",
		},
		MaxAge: 7200,
	}).Handler(h)
}
