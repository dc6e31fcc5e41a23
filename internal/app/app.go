// Package app wires hookstream together: the event log, the services, the
// gRPC servers (TCP and in-memory), the HTTP gateway and their listeners,
// and shuts them down in order. Every dependency is built here,
// explicitly, from the config.
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"buf.build/go/protovalidate"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/test/bufconn"

	"github.com/hookstream/hookstream"
	"github.com/hookstream/hookstream/gateway"
	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/internal/config"
	"github.com/hookstream/hookstream/internal/telemetry"
	"github.com/hookstream/hookstream/internal/tlsconf"
	"github.com/hookstream/hookstream/service"
	"github.com/hookstream/hookstream/service/auth"
	"github.com/hookstream/hookstream/service/delivery"
	"github.com/hookstream/hookstream/service/delivery/webhook"
	"github.com/hookstream/hookstream/service/eventlog"
	"github.com/hookstream/hookstream/service/filter"
	"github.com/hookstream/hookstream/service/normalize"
	"github.com/hookstream/hookstream/service/tracing"
	"github.com/hookstream/hookstream/ui"
)

// App is a running hookstream: event log, gRPC server, HTTP server.
type App struct {
	cfg       *config.Config
	logger    *slog.Logger
	log       *eventlog.Log
	services  *service.Services
	delivery  *delivery.Engine
	client    *webhook.Client
	health    *health.Server
	grpc      *grpc.Server
	http      *http.Server
	inmem     *bufconn.Listener
	inmemGRPC *grpc.Server
	conn      *grpc.ClientConn
	grpcLis   net.Listener
	httpLis   net.Listener
	serveErr  chan error
	telemetry *telemetry.Provider
}

// Option changes how Start builds the app, beyond the config.
type Option func(*options)

type options struct {
	spans sdktrace.SpanProcessor
}

// WithSpanProcessor turns tracing on, with spans going to sp instead of
// the config's OTLP endpoint (tests and benchmarks); the config's
// sampling ratio applies.
func WithSpanProcessor(sp sdktrace.SpanProcessor) Option {
	return func(o *options) { o.spans = sp }
}

// Start builds everything and starts listening; it returns once both
// listeners accept connections. vendors are the vendor packages the
// binary is built with; every configured source must name one of them.
func Start(ctx context.Context, cfg *config.Config, logger *slog.Logger, vendors *normalize.Registry, opts ...Option) (*App, error) {
	if vendors == nil {
		return nil, errors.New("app: no vendor registry")
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	a := &App{cfg: cfg, logger: logger, serveErr: make(chan error, 2)}
	ok := false
	defer func() {
		if !ok {
			a.close()
		}
	}()
	var err error

	if a.telemetry, err = telemetry.New(ctx, cfg.Telemetry, telemetry.Options{Logger: logger, Processor: o.spans}); err != nil {
		return nil, err
	}
	tp := a.telemetry.TracerProvider()
	tracer := tracing.New(tp)
	if tp != nil {
		// Log lines written with a request's context carry its trace and
		// span ids. This is where tracing is decided (the config, or a
		// test's span processor), so the wrapper goes here rather than
		// where main builds the logger; with tracing off the logger is
		// left as it is and costs nothing more.
		logger = slog.New(tracing.LogHandler(logger.Handler()))
		a.logger = logger
		logger.Info("tracing on", "otlp_endpoint", cfg.Telemetry.OTLPEndpoint, "protocol", cfg.Telemetry.Protocol,
			"sampling_ratio", *cfg.Telemetry.SamplingRatio)
	}

	a.log, err = eventlog.Open(ctx, eventlog.Config{
		DataDir:        cfg.Log.DataDir,
		URL:            cfg.Log.URL,
		CredsFile:      cfg.Log.CredsFile,
		User:           cfg.Log.User,
		Password:       cfg.Log.Password,
		Token:          cfg.Log.Token,
		NkeyFile:       cfg.Log.NkeyFile,
		TLSCA:          cfg.Log.TLS.CA,
		TLSCert:        cfg.Log.TLS.Cert,
		TLSKey:         cfg.Log.TLS.Key,
		Replicas:       cfg.Log.Replicas,
		Retention:      cfg.Log.Retention,
		DedupWindow:    cfg.Log.DedupWindow,
		GuardWindow:    cfg.Log.DedupGuard,
		IndexDir:       cfg.Log.IndexDir,
		SyncAlways:     cfg.Log.Fsync == "always",
		SyncInterval:   cfg.Log.FsyncInterval,
		GroupCommit:    eventlog.GroupCommit(cfg.Log.GroupCommit),
		MaxPayload:     int32(cfg.Log.MaxMessageSize),
		MinFreeDisk:    int64(cfg.Log.MinFreeDisk),
		ConnectTimeout: cfg.Log.ConnectTimeout,

		QuarantineMaxBytes: int64(cfg.Quarantine.MaxBytes),
		QuarantineMaxAge:   cfg.Quarantine.MaxAge,
		LookupBudget:       cfg.Log.LookupBudget,
		ReadBudget:         int64(cfg.Log.ReadBudget),
	}, logger)
	if err != nil {
		return nil, err
	}
	// Every stored message (event or quarantined request) must fit in one
	// log message, with room for its envelope. With log.keep_raw an event
	// holds the body twice: its normalized payload and its raw request.
	keepRaw := cfg.Log.KeepRaw == nil || *cfg.Log.KeepRaw
	if limit := bodyLimitFor(a.log.MaxMessageSize(), keepRaw); int64(cfg.HTTP.BodyLimit) > limit {
		if cfg.HTTP.BodyLimit != config.DefaultBodyLimit {
			if keepRaw {
				return nil, fmt.Errorf("http.body_limit %d does not fit the log's maximum message size %d twice, as log.keep_raw "+
					"needs (body_limit*2 + 64KiB); set it to %d or less, raise log.max_message_size, or set log.keep_raw: false",
					cfg.HTTP.BodyLimit, a.log.MaxMessageSize(), limit)
			}
			return nil, fmt.Errorf("http.body_limit %d does not fit the log's maximum message size %d; set it to %d or less",
				cfg.HTTP.BodyLimit, a.log.MaxMessageSize(), limit)
		}
		logger.Warn("lowering the default body limit to fit the log's maximum message size",
			"body_limit", limit, "max_message_size", a.log.MaxMessageSize(), "keep_raw", keepRaw)
		cfg.HTTP.BodyLimit = config.ByteSize(limit)
	}

	validator, err := normalize.NewValidator()
	if err != nil {
		return nil, err
	}
	sources, err := buildSources(cfg, vendors, validator, logger)
	if err != nil {
		return nil, err
	}
	filters, err := filter.NewCompiler()
	if err != nil {
		return nil, err
	}
	tokens, err := apiTokens(cfg, logger)
	if err != nil {
		return nil, err
	}
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := service.NewMetrics(registry)
	registerIndexMetrics(registry, a.log)
	registry.MustRegister(appendCollector{log: a.log})
	registry.MustRegister(quarantineCollector{log: a.log}, diskCollector{log: a.log})
	a.services, err = service.New(service.Options{
		Logger: logger, Log: a.log, Sources: sources, Filters: filters, Metrics: metrics,
		Heartbeat: cfg.Subscribe.Heartbeat, StallTimeout: cfg.Subscribe.StallTimeout,
		MaxStreams: cfg.Subscribe.MaxStreams, MaxStreamsPerToken: cfg.Subscribe.MaxStreamsPerToken,
		StreamBuffer: int(cfg.Subscribe.StreamBuffer), BufferBudget: int64(cfg.Subscribe.BufferBudget),
		HideUnknownSources: cfg.API.UnknownSource == "unauthorized",
		BodyLimit:          int64(cfg.HTTP.BodyLimit),
		KeepRaw:            keepRaw,
		PublicURL:          cfg.HTTP.PublicURL,
		Tracer:             tracer,
	})
	if err != nil {
		return nil, err
	}

	endpoints, err := a.startDelivery(ctx, cfg, logger, registry, tracer)
	if err != nil {
		return nil, err
	}

	ic := service.Interceptors{Logger: logger, Validator: validator, Metrics: metrics, Tokens: tokens}
	grpcOpts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(ic.Unary()),
		grpc.ChainStreamInterceptor(ic.Stream()),
		grpc.MaxRecvMsgSize(int(cfg.HTTP.BodyLimit) + 64<<10),
		grpc.ForceServerCodecV2(service.NewCodec()),
		// A client whose connection accepts nothing at all (not even a
		// ping) is cut off, which gives back what its streams still held.
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 20 * time.Second}),
		// Clients' keepalive pings are welcome every 5 s: gRPC's default
		// (5 minutes) cuts off, with "too_many_pings", a client that pings
		// while its stream sends nothing, such as one that stopped reading,
		// and it would then never see its stream's status.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	}
	if tp != nil {
		grpcOpts = append(grpcOpts, grpc.StatsHandler(otelgrpc.NewServerHandler(append(otelgrpcOptions(tp),
			otelgrpc.WithPublicEndpointFn(webhookRPC))...)))
	}
	// Subscribe streams measure their clients' progress in bytes through
	// the credentials (service.ProgressCredentials).
	creds := insecure.NewCredentials()
	if cfg.GRPC.TLS.Enabled() {
		tc, err := tlsconf.Server(cfg.GRPC.TLS.Cert, cfg.GRPC.TLS.Key, cfg.GRPC.TLS.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("grpc.tls: %w", err)
		}
		creds = credentials.NewTLS(tc)
	}
	// Both servers take the same options; only their credentials differ
	// (the in-memory listener for the gateway needs no TLS).
	a.grpc = grpc.NewServer(slices.Concat(grpcOpts, []grpc.ServerOption{grpc.Creds(service.ProgressCredentials(creds))})...)
	a.inmemGRPC = grpc.NewServer(slices.Concat(grpcOpts, []grpc.ServerOption{grpc.Creds(service.ProgressCredentials(insecure.NewCredentials()))})...)
	a.health = health.NewServer()
	for _, srv := range []*grpc.Server{a.grpc, a.inmemGRPC} {
		hookstreamv1.RegisterIngestServiceServer(srv, a.services.Ingest)
		hookstreamv1.RegisterEventServiceServer(srv, a.services.Events)
		hookstreamv1.RegisterQuarantineServiceServer(srv, a.services.Quarantine)
		hookstreamv1.RegisterAdminServiceServer(srv, a.services.Admin)
		hookstreamv1.RegisterSourceServiceServer(srv, a.services.Sources)
		hookstreamv1.RegisterEndpointServiceServer(srv, endpoints)
		healthpb.RegisterHealthServer(srv, a.health)
	}
	if *cfg.GRPC.Reflection {
		reflection.Register(a.grpc)
	}

	// The gateway reaches the gRPC server through memory, never TCP.
	a.inmem = bufconn.Listen(1 << 20)
	// Fixed flow-control windows: an HTTP subscriber that stops reading
	// holds back its stream after 64 KiB, instead of the gateway taking in
	// megabytes for it (gRPC's window would otherwise grow), and the server
	// sees it stall.
	dialOpts := []grpc.DialOption{
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return a.inmem.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64 << 20)),
		grpc.WithInitialWindowSize(64 << 10),
		grpc.WithInitialConnWindowSize(1 << 20),
	}
	if tp != nil {
		// REST calls pass their HTTP span on to the gRPC server.
		dialOpts = append(dialOpts, grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelgrpcOptions(tp)...)))
	}
	a.conn, err = grpc.NewClient("passthrough:///in-memory", dialOpts...)
	if err != nil {
		return nil, err
	}
	inspector, err := ui.Handler(gateway.RouteError)
	if err != nil {
		return nil, err
	}
	handler, err := gateway.New(ctx, gateway.Options{
		Logger:      logger,
		Ingest:      a.services.Ingest,
		Interceptor: ic.Unary(),
		Conn:        a.conn,
		Dial:        a.inmem.DialContext,
		CORSOrigins: cfg.HTTP.CORS.AllowedOrigins,
		BodyLimit:   int64(cfg.HTTP.BodyLimit),
		Ready:       a.log.Ready,
		Degraded: func() string {
			if short := a.log.DiskShort(); short != "" {
				return "disk nearly full: " + short
			}
			if f := a.log.StoreFault(); f != "" {
				return f
			}
			if d := a.log.Damage(); d != nil {
				return d.String()
			}
			if n := a.sealed(); n > 0 {
				return fmt.Sprintf("%d endpoint(s) not delivered here: their signing secret is sealed with a delivery.secret_key this server does not have", n)
			}
			return ""
		},
		OpenAPI:          hookstream.OpenAPI,
		Metrics:          promhttp.HandlerFor(registry, promhttp.HandlerOpts{}),
		MetricsAuth:      metricsAuth(cfg, tokens),
		PipedriveSources: sourcesOf(cfg, "pipedrive"),
		UI:               inspector,
		TracerProvider:   tp,
	})
	if err != nil {
		return nil, err
	}
	a.http = &http.Server{
		Handler:           limitHeaders(int(cfg.HTTP.MaxHeaderBytes), handler),
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
		ReadTimeout:       cfg.HTTP.ReadTimeout,
		IdleTimeout:       cfg.HTTP.IdleTimeout,
		MaxHeaderBytes:    int(cfg.HTTP.MaxHeaderBytes),
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		// No WriteTimeout: Subscribe responses stream for as long as the
		// client stays; shutdown ends them instead.
	}

	if a.grpcLis, err = net.Listen("tcp", cfg.GRPC.Addr); err != nil {
		return nil, fmt.Errorf("grpc listener: %w", err)
	}
	if a.httpLis, err = net.Listen("tcp", cfg.HTTP.Addr); err != nil {
		return nil, fmt.Errorf("http listener: %w", err)
	}
	if cfg.HTTP.TLS.Enabled() {
		tc, err := tlsconf.Server(cfg.HTTP.TLS.Cert, cfg.HTTP.TLS.Key, cfg.HTTP.TLS.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("http.tls: %w", err)
		}
		a.httpLis = tls.NewListener(a.httpLis, tc)
	}
	go func() { a.serveErr <- a.grpc.Serve(a.grpcLis) }()
	go func() { _ = a.inmemGRPC.Serve(a.inmem) }()
	go func() {
		if err := a.http.Serve(a.httpLis); !errors.Is(err, http.ErrServerClosed) {
			a.serveErr <- err
		}
	}()
	a.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	go a.watchLog(ctx)
	logger.Info("hookstream serving", "http", a.httpLis.Addr().String(), "grpc", a.grpcLis.Addr().String(),
		"log", logMode(cfg), "sources", len(sources))
	ok = true
	return a, nil
}

// startDelivery opens outbound delivery's store and starts its engine.
func (a *App) startDelivery(ctx context.Context, cfg *config.Config, logger *slog.Logger, reg prometheus.Registerer, tracer *tracing.Tracer) (*service.Endpoints, error) {
	d := cfg.Delivery
	store, err := delivery.OpenStore(ctx, a.log.JetStream(), delivery.StoreOptions{
		Key: d.Key(), Plain: d.PlainSecrets, Max: d.MaxEndpoints, Replicas: a.log.Replicas(),
		AttemptsRetention: d.AttemptsRetention, DeadLetterRetention: d.DeadLetterRetention,
		Syncer: a.log, Guard: a.log,
	})
	if err != nil {
		return nil, err
	}
	if !store.CanStoreSecrets() {
		logger.Warn("outbound endpoints cannot be created: set delivery.secret_key (or delivery.plain_secrets: true)")
	} else if d.Key() == nil {
		logger.Warn("endpoint signing secrets are stored unsealed (delivery.plain_secrets); anyone who can read the NATS server can read them")
	}
	a.client = webhook.NewClient(webhook.Options{AllowNetworks: d.Networks(), Timeout: d.Timeout})
	a.delivery, err = delivery.Start(ctx, delivery.Options{
		Logger: logger, Log: a.log, Store: store, Compile: a.services.Compile, Next: a.services.NextEvent, Tap: a.services.TapEvents,
		Client: a.client, Metrics: delivery.NewMetrics(reg), Tracer: tracer,
		Timeout: d.Timeout, Schedule: d.RetrySchedule, Jitter: *d.Jitter, DisableAfter: d.DisableAfter,
		MaxInFlight: d.MaxInFlight, MaxPending: d.MaxPending, SecretOverlap: d.SecretOverlap,
	})
	if err != nil {
		return nil, err
	}
	return a.services.NewEndpoints(service.EndpointOptions{Store: store, Engine: a.delivery, AllowHTTP: d.AllowHTTP, AllowNetworks: d.Networks(), Overlap: d.SecretOverlap}), nil
}

// sourcesOf lists the configured sources of a vendor.
func sourcesOf(cfg *config.Config, vendor string) []string {
	var out []string
	for _, s := range cfg.Sources {
		if s.Vendor == vendor {
			out = append(out, s.Name)
		}
	}
	return out
}

// watchLog mirrors the log's connection state into the health service.
func (a *App) watchLog(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ready := a.log.Ready()
		if ready == last {
			continue
		}
		last = ready
		st := healthpb.HealthCheckResponse_SERVING
		if !ready {
			st = healthpb.HealthCheckResponse_NOT_SERVING
		}
		a.health.SetServingStatus("", st)
	}
}

func logMode(cfg *config.Config) string {
	if cfg.Log.URL != "" {
		// Hosts only: a URL may hold credentials.
		var hosts []string
		for _, raw := range strings.Split(cfg.Log.URL, ",") {
			if u, err := url.Parse(strings.TrimSpace(raw)); err == nil && u.Host != "" {
				hosts = append(hosts, u.Host)
			}
		}
		return fmt.Sprintf("external NATS at %s, stream replicas %d", strings.Join(hosts, ","), cfg.Log.Replicas)
	}
	return "embedded NATS in " + cfg.Log.DataDir
}

// buildSources turns configured sources into authenticators and
// normalizers; a source without a usable secret is an error.
func buildSources(cfg *config.Config, vendors *normalize.Registry, v protovalidate.Validator, logger *slog.Logger) ([]service.Source, error) {
	var out []service.Source
	for _, s := range cfg.Sources {
		var a auth.Authenticator
		var err error
		switch {
		case s.Auth.None:
			a = auth.None()
			logger.Warn("source accepts unauthenticated webhooks (auth: none); anyone who can reach it can inject events",
				"source", s.Name)
		case s.Auth.Basic != nil:
			a, err = auth.Basic(s.Auth.Basic.Username, s.Auth.Basic.Password)
		case s.Auth.HandshakeKey != "":
			a, err = auth.HandshakeKey(s.Auth.HandshakeKey)
		case s.Auth.Token != "":
			a, err = auth.Token(s.Auth.Token)
		default:
			err = errors.New("no auth configured")
		}
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", s.Name, err)
		}
		vendor, ok := vendors.Lookup(s.Vendor)
		if !ok {
			return nil, fmt.Errorf("source %s: vendor %q is not built into this binary", s.Name, s.Vendor)
		}
		n := vendor.New(v)
		out = append(out, service.Source{Name: s.Name, Vendor: n.Vendor(), Auth: a, Normalizer: n,
			RateLimit: s.RateLimit, Burst: s.Burst, Title: vendor.Title, Where: vendor.Where, Credentials: SourceCredentials(s),
			RetryKey: vendor.RetryKey})
	}
	return out, nil
}

// SourceCredentials are what the vendor of s sends, as its setup text and
// SourceService show them.
func SourceCredentials(s config.Source) normalize.Credentials {
	c := normalize.Credentials{Token: s.Auth.Token, HandshakeKey: s.Auth.HandshakeKey}
	if s.Auth.Basic != nil {
		c.Username, c.Password = s.Auth.Basic.Username, s.Auth.Basic.Password
	}
	return c
}

// Shutdown stops in order: report NOT_SERVING, end open streams, drain
// HTTP, stop gRPC gracefully (forcibly after the timeout, so open streams
// cannot hang it), and close the log last.
func (a *App) Shutdown(timeout time.Duration) {
	a.health.Shutdown()
	a.services.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := a.http.Shutdown(ctx); err != nil {
		a.logger.Warn("http shutdown timed out; closing connections", "err", err)
		_ = a.http.Close()
	}
	done := make(chan struct{})
	go func() { a.grpc.GracefulStop(); a.inmemGRPC.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		a.logger.Warn("grpc graceful stop timed out; stopping")
		a.grpc.Stop()
		a.inmemGRPC.Stop()
	}
	a.close()
}

// close releases whatever start built.
func (a *App) close() {
	if a.http != nil {
		_ = a.http.Close()
	}
	if a.grpc != nil {
		a.grpc.Stop()
	}
	if a.inmemGRPC != nil {
		a.inmemGRPC.Stop()
	}
	for _, l := range []net.Listener{a.grpcLis, a.httpLis} {
		if l != nil {
			_ = l.Close() // already closed when serving; harmless
		}
	}
	if a.conn != nil {
		_ = a.conn.Close()
	}
	if a.delivery != nil {
		a.delivery.Stop()
	}
	if a.client != nil {
		a.client.Close()
	}
	if a.log != nil {
		a.log.Close()
	}
	if a.telemetry != nil {
		// The spans still queued are sent, within a bound of their own.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := a.telemetry.Shutdown(ctx); err != nil {
			a.logger.Warn("telemetry: spans still queued at shutdown were not sent", "err", err)
		}
	}
}

// otelgrpcOptions trace gRPC calls with tp, in W3C Trace Context, except
// health checks and reflection (noise). hookstream's metrics are
// Prometheus's; otelgrpc's own would go nowhere.
func otelgrpcOptions(tp trace.TracerProvider) []otelgrpc.Option {
	return []otelgrpc.Option{
		otelgrpc.WithTracerProvider(tp),
		otelgrpc.WithPropagators(tracing.Propagator()),
		otelgrpc.WithMeterProvider(noop.NewMeterProvider()),
		otelgrpc.WithFilter(func(info *stats.RPCTagInfo) bool {
			return !strings.HasPrefix(info.FullMethodName, "/grpc.health.v1.") && !strings.HasPrefix(info.FullMethodName, "/grpc.reflection.")
		}),
	}
}

// webhookRPC reports whether a gRPC call hands in a webhook (the
// IngestService, as vendors' relays call it): like a webhook posted to
// /v1/webhooks/{source}, it starts a trace of its own, linked to the
// caller's context rather than continuing it, so an outside caller cannot
// decide what is sampled.
func webhookRPC(_ context.Context, info *stats.RPCTagInfo) bool {
	return strings.HasPrefix(info.FullMethodName, "/"+hookstreamv1.IngestService_ServiceDesc.ServiceName+"/")
}

// apiTokens builds the API token checker. Without tokens the read and admin
// APIs refuse every call, which is logged at start.
func apiTokens(cfg *config.Config, logger *slog.Logger) (*auth.APITokens, error) {
	var tokens []auth.APIToken
	for _, t := range cfg.API.Tokens {
		scope, err := auth.ParseScope(t.Scope)
		if err != nil {
			return nil, fmt.Errorf("api token %s: %w", t.Name, err)
		}
		if t.Token != "" {
			tokens = append(tokens, auth.NewAPIToken(t.Name, scope, t.Token))
			continue
		}
		tok, err := auth.NewAPITokenHash(t.Name, scope, t.SHA256)
		if err != nil {
			return nil, fmt.Errorf("api token %s: %w", t.Name, err)
		}
		tokens = append(tokens, tok)
	}
	if len(tokens) == 0 {
		logger.Warn("no API tokens configured (api.tokens): the event, quarantine and metrics APIs refuse every call")
	}
	return auth.NewAPITokens(tokens...), nil
}

// metricsAuth decides who may read /metrics: anyone with a read token, or
// everyone when api.public_metrics is set.
func metricsAuth(cfg *config.Config, tokens *auth.APITokens) func(*http.Request) bool {
	if cfg.API.PublicMetrics {
		return func(*http.Request) bool { return true }
	}
	return func(r *http.Request) bool {
		tok, ok := tokens.Check(r.Header.Get("Authorization"))
		return ok && tok.Scope >= auth.ScopeRead
	}
}

// registerIndexMetrics exposes the dedup index's size and lag.
func registerIndexMetrics(reg prometheus.Registerer, log *eventlog.Log) {
	gauge := func(name, help string, f func(eventlog.IndexStatus) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(log.IndexStatus()) })
	}
	reg.MustRegister(
		gauge("hookstream_dedup_index_entries", "Event ids in the on-disk dedup index.",
			func(s eventlog.IndexStatus) float64 { return float64(s.Entries) }),
		gauge("hookstream_dedup_index_bytes", "Size of the dedup index files (sparse; disk use is at most this).",
			func(s eventlog.IndexStatus) float64 { return float64(s.Bytes) }),
		gauge("hookstream_dedup_index_lag_seconds", "How long ago the dedup index last held the whole log; above half of log.dedup_guard, ingest answers 503.",
			func(s eventlog.IndexStatus) float64 { return s.Lag.Seconds() }),
		gauge("hookstream_log_lost_events", "Acknowledged events the event log was found to have lost (damaged storage) when this process opened it; alert on any value above 0.",
			func(s eventlog.IndexStatus) float64 { return float64(s.LostEvents) }),
	)
}

// appendCollector exposes how group commit (log.group_commit) shares
// writes to the log among concurrent appends.
type appendCollector struct{ log *eventlog.Log }

var (
	appendBatchSizeDesc = prometheus.NewDesc("hookstream_log_append_batch_size",
		"Appends per write to the event log under group commit (log.group_commit): a write of one is a plain publish, of more "+
			"an atomic batch with one fsync. Empty when appends are not grouped.", nil, nil)
	appendBatchFailedDesc = prometheus.NewDesc("hookstream_log_append_batch_failures_total",
		"Batches of appends the event log refused (a duplicate inside, the log unavailable, a timeout); their appends were then published one by one.", nil, nil)
	logSyncsDesc = prometheus.NewDesc("hookstream_log_syncs_total",
		"Shared syncs of the event log's disk (fsync: always on the embedded server, log.group_commit: auto); zero when writes are synced one by one.", nil, nil)
	logSyncedWritesDesc = prometheus.NewDesc("hookstream_log_synced_writes_total",
		"Writes (appends, quarantine entries, endpoint changes, dead letters) that waited for a shared sync; over hookstream_log_syncs_total, the writes per sync.", nil, nil)
)

func (appendCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- appendBatchSizeDesc
	ch <- appendBatchFailedDesc
	ch <- logSyncsDesc
	ch <- logSyncedWritesDesc
}

func (c appendCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.log.AppendStats()
	ch <- prometheus.MustNewConstHistogram(appendBatchSizeDesc, st.Writes, float64(st.Appends), st.Buckets)
	ch <- prometheus.MustNewConstMetric(appendBatchFailedDesc, prometheus.CounterValue, float64(st.Failed))
	ch <- prometheus.MustNewConstMetric(logSyncsDesc, prometheus.CounterValue, float64(st.Syncs))
	ch <- prometheus.MustNewConstMetric(logSyncedWritesDesc, prometheus.CounterValue, float64(st.SyncedWrites))
}

// quarantineCollector exposes the quarantine bucket's use and limit, read
// from the log once per scrape, so operators see it filling up before
// webhooks get 503 for it.
type quarantineCollector struct{ log *eventlog.Log }

var (
	quarantineBytesDesc = prometheus.NewDesc("hookstream_quarantine_bytes",
		"Bytes the quarantine bucket holds; at hookstream_quarantine_max_bytes, webhooks that need quarantine get 503.", nil, nil)
	quarantineMaxBytesDesc = prometheus.NewDesc("hookstream_quarantine_max_bytes",
		"Size limit of the quarantine bucket (quarantine.max_bytes).", nil, nil)
	quarantineEntriesDesc = prometheus.NewDesc("hookstream_quarantine_entries",
		"Entries in the quarantine bucket, reprocessed ones and discard markers included.", nil, nil)
)

func (quarantineCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- quarantineBytesDesc
	ch <- quarantineMaxBytesDesc
	ch <- quarantineEntriesDesc
}

func (c quarantineCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := c.log.QuarantineStatus(ctx)
	if err != nil {
		return // the log is down; /healthz and the ingest metrics say so
	}
	ch <- prometheus.MustNewConstMetric(quarantineBytesDesc, prometheus.GaugeValue, float64(st.Bytes))
	ch <- prometheus.MustNewConstMetric(quarantineMaxBytesDesc, prometheus.GaugeValue, float64(st.MaxBytes))
	ch <- prometheus.MustNewConstMetric(quarantineEntriesDesc, prometheus.GaugeValue, float64(st.Entries))
}

// diskCollector exposes the free space of the log's file systems, so
// operators see the disk filling up before webhooks get 503 for it.
type diskCollector struct{ log *eventlog.Log }

var (
	diskFreeDesc = prometheus.NewDesc("hookstream_log_disk_free_bytes",
		"Free space of the file system of a directory of the log (log.data_dir, log.index_dir); below hookstream_log_min_free_disk_bytes, webhooks get 503.",
		[]string{"dir"}, nil)
	minFreeDiskDesc = prometheus.NewDesc("hookstream_log_min_free_disk_bytes",
		"Free space the log keeps on its file systems (log.min_free_disk).", nil, nil)
)

func (diskCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- diskFreeDesc
	ch <- minFreeDiskDesc
}

func (c diskCollector) Collect(ch chan<- prometheus.Metric) {
	readings, keep := c.log.DiskFree()
	for _, r := range readings {
		ch <- prometheus.MustNewConstMetric(diskFreeDesc, prometheus.GaugeValue, float64(r.Free), r.Dir)
	}
	ch <- prometheus.MustNewConstMetric(minFreeDiskDesc, prometheus.GaugeValue, float64(keep))
}

// HTTPAddr is the address the HTTP listener accepts on.
func (a *App) HTTPAddr() string { return a.httpLis.Addr().String() }

// GRPCAddr is the address the gRPC listener accepts on.
func (a *App) GRPCAddr() string { return a.grpcLis.Addr().String() }

// Handler is the HTTP handler (the gateway), for in-process benchmarks.
func (a *App) Handler() http.Handler { return a.http.Handler }

// Log is the event log.
func (a *App) Log() *eventlog.Log { return a.log }

// Errors delivers an error when a listener fails; the caller should then
// shut down.
func (a *App) Errors() <-chan error { return a.serveErr }

// bodyLimitFor is the largest webhook body whose stored message fits a
// log message of maxMessage bytes, with 64 KiB for the envelope: the
// event's normalized copy of the body, and with keepRaw its raw request
// (the body again) too.
func bodyLimitFor(maxMessage int64, keepRaw bool) int64 {
	if keepRaw {
		return (maxMessage - 64<<10) / 2
	}
	return maxMessage - 64<<10
}

// limitHeaders answers 431 to a request whose head (request line and
// headers, as sent) is larger than limit. net/http enforces
// http.Server.MaxHeaderBytes only loosely (it reads several KiB past it
// before it answers 431 itself), so the configured limit is checked again
// here, exactly, on every request it let through.
func limitHeaders(limit int, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := len(r.Method) + 1 + len(r.RequestURI) + 1 + len(r.Proto) + 2 + len("Host: ") + len(r.Host) + 2
		for k, vs := range r.Header {
			for _, v := range vs {
				n += len(k) + 2 + len(v) + 2
			}
		}
		if n > limit {
			w.Header().Set("Connection", "close")
			http.Error(w, "431 Request Header Fields Too Large", http.StatusRequestHeaderFieldsTooLarge)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// sealed is how many endpoints this replica leaves undelivered because
// their signing secret is sealed with a key it does not have.
func (a *App) sealed() int {
	if a.delivery == nil {
		return 0
	}
	return a.delivery.Sealed()
}
