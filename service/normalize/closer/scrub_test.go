package closer_test

import (
	"os"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/normalize"
)

// BenchmarkScrubClosed is what removing secrets costs a closed
// conversation after normalization: the event (ScrubEvent) and, for
// log.keep_raw, the request body (ScrubBody); normalization for scale.
func BenchmarkScrubClosed(b *testing.B) {
	body, err := os.ReadFile("testdata/closed.json")
	if err != nil {
		b.Fatal(err)
	}
	n := newNormalizer(b)
	ev, err := n.Normalize(normalize.Input{Source: "closer", Body: body, ReceivedAt: time.Now()})
	if err != nil {
		b.Fatal(err)
	}
	secrets := []string{"s3cr3t-token-value-1234567890"}
	b.Run("event", func(b *testing.B) {
		evs := make([]*hookstreamv1.Event, b.N)
		for i := range evs {
			evs[i] = proto.Clone(ev).(*hookstreamv1.Event)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			normalize.ScrubEvent(evs[i], n.SecretMembers(), secrets)
		}
	})
	b.Run("body", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if out := normalize.ScrubBody(body, n.SecretMembers(), secrets); len(out) == 0 {
				b.Fatal("ScrubBody returned nothing")
			}
		}
	})
	b.Run("normalize", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			_, _ = n.Normalize(normalize.Input{Source: "closer", Body: body, ReceivedAt: time.Now()})
		}
	})
}
