package delivery

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/delivery/webhook"
	"github.com/hookstream/hookstream/service/eventlog"
)

// shared holds recently read events, decoded and encoded once for every
// endpoint: ten endpoints reading the same event cost one decode and one
// encoding per body format, not ten. It keeps the last sharedSize
// positions, of one incarnation of the log at a time (positions start over
// in a stream deleted and created again).
//
// Of those, only the decodedKeep most recently decoded keep their decoded
// form: a decoded event is a tree of many small objects that the garbage
// collector must walk in every cycle (thousands of them made its mark
// phase, and so the latency spikes every mark phase causes, about twice as
// long), while what a delivery needs once the bodies are encoded is small
// (eventInfo). An event decoded again later (a filter of an endpoint far
// behind, a format not yet encoded) costs one decode.
type shared struct {
	mu    sync.Mutex
	log   string // the incarnation the positions belong to
	m     map[uint64]*sharedEvent
	ring  []uint64 // positions, oldest at pos once full
	pos   int
	bytes int // raw bytes of the events held

	decMu sync.Mutex
	// dec are the events holding their decoded form, oldest at decPos
	// once full; weak, so that an event the cache has dropped is not kept.
	dec    []weak.Pointer[sharedEvent]
	decPos int
}

// The cache keeps at most sharedSize events and sharedBytes of their raw
// bytes (their encodings add about as much again per format used), and
// decodedKeep of them decoded.
const (
	sharedSize  = 8192
	sharedBytes = 32 << 20
	decodedKeep = 1024
)

func newShared() *shared {
	return &shared{m: make(map[uint64]*sharedEvent, sharedSize), ring: make([]uint64, sharedSize), dec: make([]weak.Pointer[sharedEvent], decodedKeep)}
}

// sharedEvent is one event, decoded when needed and encoded once per
// format. Its values are read-only once made.
type sharedEvent struct {
	st    eventlog.Stored
	cache *shared // bounds the decoded events held; nil: kept
	mu    sync.Mutex
	ev    atomic.Pointer[hookstreamv1.Event] // decoded, until the cache lets it go
	info  atomic.Pointer[eventInfo]          // kept once known
	enc   [4]encoding                        // by EndpointFormat
}

// eventInfo is what a delivery needs of an event besides its body: kept
// when the decoded event is let go.
type eventInfo struct {
	id     string
	vendor hookstreamv1.Vendor
	key    uint64 // orderingKey
	recv   time.Time
	err    error // the event does not decode
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
	se := &sharedEvent{st: st, cache: c}
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

// decoded notes that se now holds its decoded form; the one decoded
// decodedKeep decodes ago lets go of its own.
func (c *shared) decoded(se *sharedEvent) {
	c.decMu.Lock()
	defer c.decMu.Unlock()
	if old := c.dec[c.decPos].Value(); old != nil {
		old.ev.Store(nil)
	}
	c.dec[c.decPos] = weak.Make(se)
	c.decPos = (c.decPos + 1) % len(c.dec)
}

// event decodes the event, without its raw request (outbound deliveries
// never carry the vendor's original body, Event.raw); the decoded form is
// shared while the cache keeps it.
func (se *sharedEvent) event() (*hookstreamv1.Event, error) {
	if ev := se.ev.Load(); ev != nil {
		return ev, nil
	}
	se.mu.Lock()
	defer se.mu.Unlock()
	if ev := se.ev.Load(); ev != nil {
		return ev, nil
	}
	if in := se.info.Load(); in != nil && in.err != nil {
		return nil, in.err
	}
	ev, err := se.st.DecodedWithoutRaw()
	if err != nil {
		se.info.Store(&eventInfo{err: err})
		return nil, err
	}
	if se.info.Load() == nil {
		se.info.Store(&eventInfo{id: ev.GetId(), vendor: ev.GetVendor(), key: orderingKey(ev), recv: ev.GetReceivedAt().AsTime()})
	}
	se.ev.Store(ev)
	if se.cache != nil {
		se.cache.decoded(se)
	}
	return ev, nil
}

// about is what a delivery needs of the event besides its body, decoding
// it only if that was never done.
func (se *sharedEvent) about() (*eventInfo, error) {
	if in := se.info.Load(); in != nil {
		return in, in.err
	}
	if _, err := se.event(); err != nil {
		return nil, err
	}
	return se.info.Load(), nil
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
