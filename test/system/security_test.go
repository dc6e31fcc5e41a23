package system

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

func dial(t *testing.T, s *server, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	opts = append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)
	c, err := grpc.NewClient(s.app.GRPCAddr(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// The read APIs need a bearer token; admin APIs need the admin scope; the
// webhook route keeps its vendor auth only; health stays open.
func TestAPITokens(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir(), ""))
	ctx := context.Background()

	anon := dial(t, s)
	_, err := hookstreamv1.NewEventServiceClient(anon).ListEvents(ctx, &hookstreamv1.ListEventsRequest{})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("ListEvents without a token: %v", err)
	}
	wrong := dial(t, s, grpc.WithPerRPCCredentials(bearer("not-a-token-0123456789")))
	_, err = hookstreamv1.NewEventServiceClient(wrong).GetEvent(ctx, &hookstreamv1.GetEventRequest{Id: strings.Repeat("0", 32)})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("GetEvent with a wrong token: %v", err)
	}
	stream, err := hookstreamv1.NewEventServiceClient(anon).Subscribe(ctx, &hookstreamv1.SubscribeRequest{})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("Subscribe without a token: %v", err)
	}
	reader := dial(t, s, grpc.WithPerRPCCredentials(bearer(readToken)))
	if _, err := hookstreamv1.NewEventServiceClient(reader).ListEvents(ctx, &hookstreamv1.ListEventsRequest{}); err != nil {
		t.Errorf("ListEvents with a read token: %v", err)
	}
	_, err = hookstreamv1.NewQuarantineServiceClient(reader).ReprocessAllQuarantined(ctx, &hookstreamv1.ReprocessAllQuarantinedRequest{})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("ReprocessAll with a read token: %v", err)
	}
	if _, err := healthpb.NewHealthClient(anon).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("health without a token: %v", err)
	}
	// Two different tokens in one call: neither counts, whatever the order.
	for _, pair := range [][2]string{{adminToken, readToken}, {readToken, adminToken}} {
		mctx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+pair[0], "authorization", "Bearer "+pair[1])
		_, err := hookstreamv1.NewQuarantineServiceClient(anon).ListQuarantined(mctx, &hookstreamv1.ListQuarantinedRequest{})
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("ListQuarantined with two tokens: %v, want UNAUTHENTICATED", err)
		}
	}

	for _, tc := range []struct {
		path, token string
		want        int
	}{
		{"/v1/events", "", http.StatusUnauthorized},
		{"/v1/events", "wrong-token-0123456789", http.StatusUnauthorized},
		{"/v1/events", readToken, http.StatusOK},
		{"/v1/quarantine", readToken, http.StatusForbidden},
		{"/v1/quarantine", adminToken, http.StatusOK},
		{"/metrics", "", http.StatusUnauthorized},
		{"/metrics", readToken, http.StatusOK},
		{"/healthz", "", http.StatusOK},
	} {
		if code, body := httpDo(t, http.MethodGet, s.base+tc.path, tc.token); code != tc.want {
			t.Errorf("GET %s with token %q: %d %s, want %d", tc.path, tc.token, code, body, tc.want)
		}
	}
	// An API token is not a webhook credential.
	resp := s.post("/v1/webhooks/pipedrive", fixture(t, "pipedrive", "v2_change_deal"), map[string]string{"Authorization": "Bearer " + adminToken})
	if resp.code != http.StatusUnauthorized {
		t.Errorf("webhook with an API token: %d", resp.code)
	}
}

func TestUnknownSourceCanAnswer401(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), "")
	cfg.API.UnknownSource = "unauthorized"
	s := startServer(t, cfg)
	if resp := s.post("/v1/webhooks/does-not-exist", []byte(`{}`), nil); resp.code != http.StatusUnauthorized {
		t.Errorf("unknown source with unknown_source: unauthorized: %d %v", resp.code, resp.body)
	}
	if logs := s.logs.String(); !strings.Contains(logs, "source that is not configured") || !strings.Contains(logs, "does-not-exist") {
		t.Errorf("the log does not name the unknown source:\n%s", logs)
	}
	wrong := s.post("/v1/webhooks/closer?token=wrong-token-0123456789", fixture(t, "closer", "created"), nil)
	if wrong.code != http.StatusUnauthorized || wrong.body["error"].(map[string]any)["message"] != "missing or wrong credentials" {
		t.Errorf("wrong token: %d %v", wrong.code, wrong.body)
	}
}

func TestRateLimit(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), "")
	for i := range cfg.Sources {
		if cfg.Sources[i].Name == "clinchpad" {
			cfg.Sources[i].RateLimit, cfg.Sources[i].Burst = 1, 2
		}
	}
	s := startServer(t, cfg)
	codes := map[int]int{}
	var limited response
	for i := range 6 {
		body := strings.Replace(string(fixture(t, "clinchpad", "lead_won")), `"_id": "6667a1b0`, `"_id": "`+string(rune('a'+i))+`667a1b0`, 1)
		r := s.post("/v1/webhooks/clinchpad", []byte(body), nil)
		codes[r.code]++
		if r.code == http.StatusTooManyRequests {
			limited = r
		}
	}
	if codes[http.StatusOK] < 2 || codes[http.StatusTooManyRequests] == 0 {
		t.Fatalf("status counts %v, want the burst of 2 accepted and the rest 429", codes)
	}
	if limited.header.Get("Retry-After") == "" || limited.reason() != "RATE_LIMITED" {
		t.Errorf("429 without Retry-After or reason: %v %v", limited.header, limited.body)
	}
	// Other sources are not limited.
	if r := s.post("/v1/webhooks/pipedrive", fixture(t, "pipedrive", "v2_change_deal"), pipedriveAuth(pdPassword)); r.code != http.StatusOK {
		t.Errorf("pipedrive: %d", r.code)
	}
}

// A subscriber that stops reading is dropped with a clear status, and
// neither ingest nor another subscriber waits for it.
func TestStalledSubscriberIsDropped(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), "")
	cfg.Subscribe.StallTimeout = time.Second
	s := startServer(t, cfg)
	// Its own connection with a fixed 64 KiB window (no BDP growth), so it
	// blocks the server's sends soon after it stops reading.
	slowConn := dial(t, s, grpc.WithPerRPCCredentials(bearer(readToken)),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stalledStream, err := hookstreamv1.NewEventServiceClient(slowConn).Subscribe(ctx, &hookstreamv1.SubscribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	healthy := s.subscribe(&hookstreamv1.SubscribeRequest{})
	if _, err := stalledStream.Header(); err != nil {
		t.Fatal(err)
	}
	if _, err := healthy.stream.Header(); err != nil {
		t.Fatal(err)
	}
	// Large events fill the stalled stream's flow-control window quickly.
	note := strings.Repeat("x", 60_000)
	deadline := time.Now().Add(30 * time.Second)
	n := 0
	for ; time.Now().Before(deadline); n++ {
		body := `{"activity": {"_id": "a` + strconv.Itoa(n) + `", "created_at": "2024-06-11T01:00:00Z", "type": "note:created", "note_content": "` + note + `"},
			"lead": {"_id": "l"}, "handshake_key": "` + cpHandshake + `"}`
		if r := s.post("/v1/webhooks/clinchpad", []byte(body), nil); r.code != http.StatusOK {
			t.Fatalf("ingest %d while a subscriber stalls: %d %v", n, r.code, r.body)
		}
		if d := healthy.next(); d.GetEvent().GetClinchpad().GetActivity().GetId() != "a"+strconv.Itoa(n) {
			t.Fatalf("healthy subscriber got %v", d.GetEvent().GetId())
		}
		if strings.Contains(s.logs.String(), "dropping stalled subscriber") {
			break
		}
	}
	if !strings.Contains(s.logs.String(), "dropping stalled subscriber") {
		t.Fatalf("no stalled subscriber was dropped after %d events", n)
	}
	// Now read the stalled stream: it ends with RESOURCE_EXHAUSTED.
	done := make(chan error, 1)
	go func() {
		for {
			if _, err := stalledStream.Recv(); err != nil {
				done <- err
				return
			}
		}
	}()
	select {
	case err := <-done:
		if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "after_cursor") {
			t.Fatalf("stalled stream ended with %v, want RESOURCE_EXHAUSTED naming after_cursor", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stalled stream did not end")
	}
	t.Logf("stalled subscriber dropped after %d events; ingest and the other subscriber kept going", n)
}

func TestMetrics(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir(), ""))
	s.post("/v1/webhooks/pipedrive", fixture(t, "pipedrive", "v2_change_deal"), pipedriveAuth(pdPassword))
	s.post("/v1/webhooks/pipedrive", fixture(t, "pipedrive", "v2_change_deal_retry"), pipedriveAuth(pdPassword))
	s.post("/v1/webhooks/pipedrive", []byte(`{"meta":`), pipedriveAuth(pdPassword))
	s.post("/v1/webhooks/pipedrive", []byte(`{}`), pipedriveAuth("wrong"))
	s.post("/v1/webhooks/nope", []byte(`{}`), nil)
	sub := s.subscribe(&hookstreamv1.SubscribeRequest{Start: &hookstreamv1.SubscribeRequest_Position{Position: hookstreamv1.StartPosition_START_POSITION_BEGINNING}})
	sub.next()
	code, body := httpDo(t, http.MethodGet, s.base+"/metrics", readToken)
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`hookstream_webhook_requests_total{outcome="accepted",source="pipedrive"} 1`,
		`hookstream_webhook_requests_total{outcome="duplicate",source="pipedrive"} 1`,
		`hookstream_webhook_requests_total{outcome="quarantined",source="pipedrive"} 1`,
		`hookstream_webhook_requests_total{outcome="unauthenticated",source="pipedrive"} 1`,
		`hookstream_webhook_requests_total{outcome="unknown_source",source="_unknown"} 1`,
		`hookstream_duplicates_total{source="pipedrive"} 1`,
		`hookstream_quarantined_total{code="REJECTION_CODE_MALFORMED_JSON",source="pipedrive"} 1`,
		`hookstream_auth_failures_total{reason="wrong",source="pipedrive"} 1`,
		`hookstream_ingest_duration_seconds_count{source="pipedrive"} 4`,
		`hookstream_log_append_duration_seconds_count 2`,
		"hookstream_log_append_batch_size_count 0\n", // fsync: interval, group commit off
		"hookstream_log_append_batch_failures_total 0\n",
		`hookstream_subscribers 1`,
		`hookstream_dedup_index_entries `,
		`hookstream_dedup_index_bytes `,
		`hookstream_dedup_index_lag_seconds `,
		`hookstream_subscriber_lag_events{subscriber=`,
		`hookstream_rpcs_total{code="OK",method="/hookstream.v1.IngestService/IngestWebhook"}`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	assertNoSecrets(t, "/metrics", body)
	if strings.Contains(body, `source="nope"`) {
		t.Error("an unknown source name became a metric label")
	}
}

// writeCA makes a throwaway CA and a certificate it signs, for 127.0.0.1.
func writeCA(t *testing.T, dir string) (caFile, certFile, keyFile, clientCert, clientKey string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hookstream test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(name string, serial int64, usage x509.ExtKeyUsage) (string, string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, _ := x509.MarshalECPrivateKey(key)
		cf, kf := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
		_ = os.WriteFile(cf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
		_ = os.WriteFile(kf, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
		return cf, kf
	}
	caFile = filepath.Join(dir, "ca.pem")
	_ = os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600)
	certFile, keyFile = issue("server", 2, x509.ExtKeyUsageServerAuth)
	clientCert, clientKey = issue("client", 3, x509.ExtKeyUsageClientAuth)
	return
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	caFile, certFile, keyFile, clientCert, clientKey := writeCA(t, dir)
	cfg := testConfig(t, t.TempDir(), "")
	cfg.HTTP.TLS.Cert, cfg.HTTP.TLS.Key = certFile, keyFile
	cfg.GRPC.TLS.Cert, cfg.GRPC.TLS.Key, cfg.GRPC.TLS.ClientCA = certFile, keyFile, caFile
	s := startServer(t, cfg)

	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(caFile)
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get("https://" + s.app.HTTPAddr() + "/healthz")
	if err != nil {
		t.Fatalf("HTTPS: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("HTTPS /healthz: %d", resp.StatusCode)
	}

	addr := s.app.GRPCAddr()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Without a client certificate the handshake fails.
	noCert, _ := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool})))
	defer noCert.Close()
	if _, err := healthpb.NewHealthClient(noCert).Check(ctx, &healthpb.HealthCheckRequest{}); err == nil {
		t.Error("gRPC without a client certificate succeeded")
	}
	cert, err := tls.LoadX509KeyPair(clientCert, clientKey)
	if err != nil {
		t.Fatal(err)
	}
	mtls, _ := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}})),
		grpc.WithPerRPCCredentials(bearer(readToken)))
	defer mtls.Close()
	if _, err := hookstreamv1.NewEventServiceClient(mtls).ListEvents(ctx, &hookstreamv1.ListEventsRequest{}); err != nil {
		t.Errorf("gRPC with a client certificate: %v", err)
	}
}
