package system

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/internal/config"
)

var (
	readersDuration = flag.Duration("readers.duration", 12*time.Second, "how long TestReadersNeverHurtIngest keeps its readers open while webhooks arrive")
	readersReplays  = flag.Int("readers.replays", 10, "TestReadersNeverHurtIngest: streams replaying the log from the beginning, over and over")
	readersIdle     = flag.Int("readers.idle", 100, "TestReadersNeverHurtIngest: streams that open at the beginning and never read (spread over API tokens, at most subscribe.max_streams_per_token each)")
	readersSlow     = flag.Int("readers.slow", 5, "TestReadersNeverHurtIngest: streams that read one message every 300 ms")
	readersBig      = flag.Int("readers.big", 24, "TestReadersNeverHurtIngest: events of about 1 MB stored before the readers start")
	readersMedium   = flag.Int("readers.medium", 120, "TestReadersNeverHurtIngest: events of about 100 KB stored before the readers start")
	readersReport   = flag.String("readers.report", "", "write TestReadersNeverHurtIngest's figures as JSON to this file")
)

// noteBody is a ClinchPad note of about size bytes.
func noteBody(id string, size int) []byte {
	return []byte(`{"activity": {"_id": "` + id + `", "created_at": "2024-06-11T01:00:00Z", "type": "note:created", "note_content": "` +
		strings.Repeat("x", size) + `"}, "lead": {"_id": "lead-big"}, "handshake_key": "` + cpHandshake + `"}`)
}

// postNote sends one webhook; it returns the status (0 when no answer).
func postNote(client *http.Client, base, id string, size int) int {
	resp, err := client.Post(base+"/v1/webhooks/clinchpad", "application/json", bytes.NewReader(noteBody(id, size)))
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// selfRSS is this process's anonymous resident set in bytes (without the
// mapped files of the dedup index).
func selfRSS() int64 { return rssKiB(os.Getpid(), "RssAnon") << 10 }

// heapInuse is the Go heap in use now (without forcing a collection).
func heapInuse() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// lastLiveHeap is the heap found live by the last collection.
func lastLiveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// liveHeap collects garbage and returns the live heap.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestReadersNeverHurtIngest stores large events (about 1 MB and 100 KB),
// then opens many streams that replay the log from the beginning over and
// over, streams that open at the beginning and never read, and slow
// streams, while webhooks keep arriving. Every webhook must be accepted,
// a live subscriber must see each of them, the heap must stay under a
// bound set by the configuration, and it must return once the streams
// close. The server runs in this process (its heap is measured; the
// clients' is included and small: they use 64 KiB flow-control windows).
func TestReadersNeverHurtIngest(t *testing.T) {
	if testing.Short() {
		t.Skip("stores and replays large events for several seconds")
	}
	cfg := testConfig(t, t.TempDir(), "")
	// Non-readers stay for the whole run: the worst case for memory.
	// Everything else is the default configuration; non-readers use
	// tokens of their own so every stream is admitted.
	cfg.Subscribe.StallTimeout = 10 * time.Minute
	idleTokens := make([]string, (*readersIdle+cfg.Subscribe.MaxStreamsPerToken-1)/cfg.Subscribe.MaxStreamsPerToken)
	for i := range idleTokens {
		idleTokens[i] = fmt.Sprintf("idle-token-%d-0123456789abcdef", i)
		cfg.API.Tokens = append(cfg.API.Tokens, config.APIToken{Name: fmt.Sprintf("idle-%d", i), Scope: "read", Token: idleTokens[i]})
	}
	s := startServer(t, cfg)
	client := &http.Client{Timeout: 10 * time.Second}

	seeded := *readersBig + *readersMedium
	for i := range seeded {
		size := 100_000
		if (i+1)*(*readersBig)/seeded > i*(*readersBig)/seeded { // spread the large ones
			size = 1_000_000
		}
		if code := postNote(client, s.base, fmt.Sprintf("seed-%05d", i), size); code != http.StatusOK {
			t.Fatalf("seeding event %d: HTTP %d", i, code)
		}
	}
	baseline := liveHeap()
	t.Logf("stored %d events (%d of ~1 MB); live heap %d MB", seeded, *readersBig, baseline>>20)

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var wg sync.WaitGroup
	beginning := &hookstreamv1.SubscribeRequest{Start: &hookstreamv1.SubscribeRequest_Position{Position: hookstreamv1.StartPosition_START_POSITION_BEGINNING}}
	smallWindows := []grpc.DialOption{grpc.WithPerRPCCredentials(bearer(readToken)),
		grpc.WithInitialWindowSize(64 << 10), grpc.WithInitialConnWindowSize(64 << 10)}

	// Replays: read everything from the beginning as fast as possible, then
	// start again.
	var replayed, replayBytes, replayErrs atomic.Int64
	for range *readersReplays {
		// Fixed 1 MiB windows: the clients run in this process, and must
		// not take megabytes each into the heap measured here.
		conn := dialAddr(t, s.app.GRPCAddr(), grpc.WithPerRPCCredentials(bearer(readToken)),
			grpc.WithInitialWindowSize(1<<20), grpc.WithInitialConnWindowSize(1<<20))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				sctx, cancel := context.WithCancel(ctx)
				stream, err := hookstreamv1.NewEventServiceClient(conn).Subscribe(sctx, beginning)
				for n := 0; err == nil && n < seeded; {
					var m *hookstreamv1.SubscribeResponse
					if m, err = stream.Recv(); err == nil && m.GetDelivery() != nil {
						n++
						replayed.Add(1)
						replayBytes.Add(int64(len(m.GetDelivery().GetEvent().GetClinchpad().GetActivity().GetNoteContent())))
					}
				}
				cancel()
				if err != nil && ctx.Err() == nil {
					replayErrs.Add(1)
					t.Logf("replay stream ended: %v", err)
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	// Non-readers: open at the beginning, never read (ten per connection).
	var idleOpen atomic.Int64
	var conn *grpc.ClientConn
	for i := range *readersIdle {
		if i%10 == 0 {
			conn = dialAddr(t, s.app.GRPCAddr(), grpc.WithPerRPCCredentials(bearer(idleTokens[i/cfg.Subscribe.MaxStreamsPerToken])),
				grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
		}
		stream, err := hookstreamv1.NewEventServiceClient(conn).Subscribe(ctx, beginning)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Header(); err != nil {
			t.Fatalf("idle stream %d: %v", i, err)
		}
		idleOpen.Add(1)
	}
	// Slow readers: one message every 300 ms.
	var slowRead atomic.Int64
	for range *readersSlow {
		conn := dialAddr(t, s.app.GRPCAddr(), smallWindows...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream, err := hookstreamv1.NewEventServiceClient(conn).Subscribe(ctx, beginning)
			for err == nil {
				select {
				case <-ctx.Done():
					return
				case <-time.After(300 * time.Millisecond):
				}
				var m *hookstreamv1.SubscribeResponse
				if m, err = stream.Recv(); err == nil && m.GetDelivery() != nil {
					slowRead.Add(1)
				}
			}
			if ctx.Err() == nil {
				t.Errorf("slow stream ended: %v", err)
			}
		}()
	}
	// A live subscriber must see every webhook accepted meanwhile.
	live := s.subscribe(&hookstreamv1.SubscribeRequest{Filter: `event.clinchpad.activity.id.startsWith("live-")`})
	if _, err := live.stream.Header(); err != nil {
		t.Fatal(err)
	}
	var liveMu sync.Mutex
	liveSeen := map[string]bool{}
	go func() {
		for {
			m, err := live.stream.Recv()
			if err != nil {
				return
			}
			if d := m.GetDelivery(); d != nil {
				liveMu.Lock()
				liveSeen[d.GetEvent().GetClinchpad().GetActivity().GetId()] = true
				liveMu.Unlock()
			}
		}
	}()

	// Webhooks meanwhile: 40 a second, every tenth of about 100 KB.
	var sent, failed atomic.Int64
	var failures sync.Map
	var peakHeap, peakLive atomic.Uint64
	var peakRSS atomic.Int64
	sample := func() {
		if h := heapInuse(); h > peakHeap.Load() {
			peakHeap.Store(h)
		}
		if h := lastLiveHeap(); h > peakLive.Load() {
			peakLive.Store(h)
		}
		if r := selfRSS(); r > peakRSS.Load() {
			peakRSS.Store(r)
		}
	}
	began := time.Now()
	var posters sync.WaitGroup
	tick := time.NewTicker(25 * time.Millisecond)
	sampler := time.NewTicker(250 * time.Millisecond)
	for n := 0; time.Since(began) < *readersDuration; {
		select {
		case <-sampler.C:
			sample()
			continue
		case <-tick.C:
		}
		size := 200
		if n%10 == 0 {
			size = 100_000
		}
		id := "live-" + strconv.Itoa(n)
		n++
		posters.Add(1)
		go func() {
			defer posters.Done()
			sent.Add(1)
			if code := postNote(client, s.base, id, size); code != http.StatusOK {
				failed.Add(1)
				failures.Store(code, true)
			}
		}()
	}
	tick.Stop()
	sampler.Stop()
	posters.Wait()
	sample()

	var codes []string
	failures.Range(func(k, _ any) bool { codes = append(codes, strconv.Itoa(k.(int))); return true })

	// Every accepted webhook reaches the live subscriber.
	deadline := time.Now().Add(20 * time.Second)
	for {
		liveMu.Lock()
		got := len(liveSeen)
		liveMu.Unlock()
		if int64(got) >= sent.Load()-failed.Load() || time.Now().After(deadline) {
			if int64(got) < sent.Load()-failed.Load() {
				t.Errorf("live subscriber saw %d of %d accepted webhooks", got, sent.Load()-failed.Load())
			}
			break
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Readers make progress: the replays get through the whole log and the
	// slow streams read something. On a quiet machine that happens while
	// the webhooks arrive; on a loaded CI machine (browser and client
	// tests running beside this one) it may take longer, so starvation is
	// a reader that makes no progress for a further 60 s, not a rate.
	for wait := time.Now().Add(60 * time.Second); time.Now().Before(wait); time.Sleep(100 * time.Millisecond) {
		if (*readersReplays == 0 || replayed.Load() >= int64(seeded)) && (*readersSlow == 0 || slowRead.Load() > 0) {
			break
		}
		sample()
	}

	// Close every stream; the memory must come back.
	stop()
	wg.Wait()
	live.cancel()
	closed := time.Now()
	for time.Now().Before(closed.Add(20 * time.Second)) {
		if _, body := httpDo(t, http.MethodGet, s.base+"/metrics", readToken); strings.Contains(body, "\nhookstream_subscribers 0\n") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The embedded server keeps the log's blocks it read cached for a few
	// seconds after the last read.
	after := liveHeap()
	for returned := time.Now().Add(20 * time.Second); after > baseline+32<<20 && time.Now().Before(returned); after = liveHeap() {
		time.Sleep(500 * time.Millisecond)
	}
	backIn := time.Since(closed)
	t.Logf("webhooks: %d sent, %d failed %v; replays: %d events (%d MB) read, %d broken streams; %d idle streams; slow streams read %d",
		sent.Load(), failed.Load(), codes, replayed.Load(), replayBytes.Load()>>20, replayErrs.Load(), idleOpen.Load(), slowRead.Load())
	t.Logf("heap: %d MB live before the readers; while they ran at most %d MB live (%d MB in use, garbage included); %d MB live %s after they closed; RSS peak %d MB",
		baseline>>20, peakLive.Load()>>20, peakHeap.Load()>>20, after>>20, backIn.Round(100*time.Millisecond), peakRSS.Load()>>20)
	if *readersReport != "" {
		report := fmt.Sprintf(`{"sent": %d, "failed": %d, "replayed": %d, "replay_mb": %d, "broken_replays": %d, "idle": %d, "slow_read": %d, "heap_before_mb": %d, "live_peak_mb": %d, "inuse_peak_mb": %d, "heap_after_mb": %d, "rss_peak_mb": %d}`+"\n",
			sent.Load(), failed.Load(), replayed.Load(), replayBytes.Load()>>20, replayErrs.Load(), idleOpen.Load(), slowRead.Load(),
			baseline>>20, peakLive.Load()>>20, peakHeap.Load()>>20, after>>20, peakRSS.Load()>>20)
		if err := os.WriteFile(*readersReport, []byte(report), 0o644); err != nil {
			t.Error(err)
		}
	}
	if failed.Load() > 0 {
		t.Errorf("%d of %d webhooks failed (HTTP %s) while readers ran", failed.Load(), sent.Load(), strings.Join(codes, ", "))
	}
	// What streams hold is capped by subscribe.buffer_budget; the log's
	// read path (reads in flight within log.read_budget, their copies in
	// the embedded server, its block cache and buffer pools), gRPC's
	// buffers and this test's clients take the rest of the allowance.
	if bound := baseline + uint64(cfg.Subscribe.BufferBudget) + readersOverhead; peakLive.Load() > bound {
		t.Errorf("live heap reached %d MB while readers ran; the bound is %d MB (%d MB before them + buffer_budget %d MB + %d MB)",
			peakLive.Load()>>20, bound>>20, baseline>>20, cfg.Subscribe.BufferBudget>>20, readersOverhead>>20)
	}
	if after > baseline+32<<20 {
		t.Errorf("live heap %d MB 20 s after every stream closed, %d MB before they opened: memory did not come back", after>>20, baseline>>20)
	}
	if *readersReplays > 0 && replayed.Load() < int64(seeded) || *readersSlow > 0 && slowRead.Load() == 0 {
		t.Errorf("readers starved: replays read %d events (the log holds %d), slow streams %d", replayed.Load(), seeded, slowRead.Load())
	}
}

// readersOverhead is what TestReadersNeverHurtIngest allows beyond the
// heap before the readers and the stream buffer budget.
const readersOverhead = 256 << 20

func dialAddr(t *testing.T, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	opts = append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)
	c, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}
