package delivery

import (
	"fmt"
	"sync"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/delivery/webhook"
	"github.com/hookstream/hookstream/service/eventlog"
)

// shared holds recently read events, decoded and encoded once for every
// endpoint: ten endpoints reading the same event cost one decode and one
// encoding per body format, not ten. It keeps the last sharedSize
// positions, of one incarnation of the log at a time (positions start over
// in a stream deleted and created again).
type shared struct {
	mu    sync.Mutex
	log   string // the incarnation the positions belong to
	m     map[uint64]*sharedEvent
	ring  []uint64 // positions, oldest at pos once full
	pos   int
	bytes int // raw bytes of the events held
}

// The cache keeps at most sharedSize events and sharedBytes of their raw
// bytes (their encodings add about as much again per format used).
const (
	sharedSize  = 8192
	sharedBytes = 32 << 20
)

func newShared() *shared {
	return &shared{m: make(map[uint64]*sharedEvent, sharedSize), ring: make([]uint64, sharedSize)}
}

// sharedEvent is one event, decoded on first use and encoded once per
// format. Its values are read-only once made.
type sharedEvent struct {
	st   eventlog.Stored
	once sync.Once
	ev   *hookstreamv1.Event
	err  error
	enc  [4]encoding // by EndpointFormat
}

type encoding struct {
	once sync.Once
	body []byte
	ct   string
	err  error
}

// get returns the shared copy of st, read from incarnation log of the
// log. Asked for another incarnation than the one it holds, the cache
// starts over with it.
func (c *shared) get(log string, st eventlog.Stored) *sharedEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	if log != c.log {
		clear(c.m)
		clear(c.ring)
		c.pos, c.bytes, c.log = 0, 0, log
	}
	if se, ok := c.m[st.Seq]; ok {
		return se
	}
	se := &sharedEvent{st: st}
	c.evict(c.pos)
	c.ring[c.pos] = st.Seq
	c.pos = (c.pos + 1) % len(c.ring)
	c.m[st.Seq] = se
	c.bytes += len(st.Raw)
	// Over the byte bound, the oldest go (never the newest).
	for i := c.pos; c.bytes > sharedBytes && i != (c.pos+len(c.ring)-1)%len(c.ring); i = (i + 1) % len(c.ring) {
		c.evict(i)
	}
	return se
}

// evict drops the event at ring slot i, if any.
func (c *shared) evict(i int) {
	if old := c.ring[i]; old != 0 {
		if se, ok := c.m[old]; ok {
			c.bytes -= len(se.st.Raw)
			delete(c.m, old)
		}
		c.ring[i] = 0
	}
}

// event decodes the event once, without its raw request: outbound
// deliveries never carry the vendor's original body (Event.raw).
func (se *sharedEvent) event() (*hookstreamv1.Event, error) {
	se.once.Do(func() { se.ev, se.err = se.st.DecodedWithoutRaw() })
	return se.ev, se.err
}

// body encodes the event in a format once.
func (se *sharedEvent) body(f hookstreamv1.EndpointFormat) ([]byte, string, error) {
	if f == hookstreamv1.EndpointFormat_ENDPOINT_FORMAT_UNSPECIFIED {
		f = hookstreamv1.EndpointFormat_ENDPOINT_FORMAT_EVENT_JSON
	}
	i := int(f)
	if i <= 0 || i >= len(se.enc) {
		return nil, "", fmt.Errorf("unknown endpoint format %d", f)
	}
	e := &se.enc[i]
	e.once.Do(func() {
		if f == hookstreamv1.EndpointFormat_ENDPOINT_FORMAT_VENDOR_BODY {
			e.body, e.ct, e.err = vendorBody(se.st)
			return
		}
		ev, err := se.event()
		if err != nil {
			e.err = err
			return
		}
		e.body, e.ct, e.err = webhook.Encode(ev, f)
	})
	return e.body, e.ct, e.err
}

// vendorBody reads only the raw field of the stored event (the rest is
// never decoded for this format).
func vendorBody(st eventlog.Stored) ([]byte, string, error) {
	raw, err := st.RawRequest()
	if err != nil {
		return nil, "", err
	}
	return webhook.VendorBody(raw)
}
