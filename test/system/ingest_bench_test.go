package system

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// BenchmarkIngestHTTP measures the server side of one webhook: the HTTP
// handler, authentication, normalization, validation and the durable
// append to the embedded log, without the network. Run with -cpuprofile
// to see where the time goes. keep_raw=on (the default) stores each
// event with its request body (Event.raw), keep_raw=off without.
func BenchmarkIngestHTTP(b *testing.B) {
	for _, subs := range []int{0, 10} {
		for _, keepRaw := range []bool{true, false} {
			name := fmt.Sprintf("subscribers=%d/keep_raw=%s", subs, map[bool]string{true: "on", false: "off"}[keepRaw])
			b.Run(name, func(b *testing.B) { benchIngest(b, subs, keepRaw) })
		}
	}
}

func benchIngest(b *testing.B, subs int, keepRaw bool) {
	cfg := testConfig(b, b.TempDir(), fmt.Sprintf("  keep_raw: %v\n", keepRaw))
	s := startServer(b, cfg)
	for range subs {
		sub := s.subscribe(&hookstreamv1.SubscribeRequest{})
		go func() {
			for {
				if _, err := sub.stream.Recv(); err != nil {
					return
				}
			}
		}()
	}
	h := s.app.Handler()
	tmpl := fixture(b, "closer", "closed")
	b.ReportAllocs()
	b.SetBytes(int64(len(tmpl)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body := bytes.Replace(tmpl, []byte("1718000950456"), fmt.Appendf(nil, "%d", 1718000950456+seqNext()), 1)
			req := httptest.NewRequest(http.MethodPost, "/v1/webhooks/closer?token="+closerToken, bytes.NewReader(body))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("%d %s", rec.Code, rec.Body)
			}
		}
	})
}
