package delivery

import (
	"sync"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/delivery/webhook"
	"github.com/hookstream/hookstream/service/eventlog"
)

// shared holds recently read events, decoded and encoded once for every
// endpoint: ten endpoints reading the same event cost one decode and one
// encoding per body format, not ten. It keeps the last sharedSize
// positions.
type shared struct {
	mu   sync.Mutex
	m    map[uint64]*sharedEvent
	ring []uint64
	pos  int
}

const sharedSize = 8192

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
	enc  [3]encoding
}

type encoding struct {
	once sync.Once
	body []byte
	ct   string
	err  error
}

// get returns the shared copy of st.
func (c *shared) get(st eventlog.Stored) *sharedEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	if se, ok := c.m[st.Seq]; ok {
		return se
	}
	se := &sharedEvent{st: st}
	if old := c.ring[c.pos]; old != 0 {
		delete(c.m, old)
	}
	c.ring[c.pos] = st.Seq
	c.pos = (c.pos + 1) % len(c.ring)
	c.m[st.Seq] = se
	return se
}

// event decodes the event once.
func (se *sharedEvent) event() (*hookstreamv1.Event, error) {
	se.once.Do(func() { se.ev, se.err = se.st.Decoded() })
	return se.ev, se.err
}

// body encodes the event in a format once.
func (se *sharedEvent) body(f hookstreamv1.EndpointFormat) ([]byte, string, error) {
	ev, err := se.event()
	if err != nil {
		return nil, "", err
	}
	i := int(f)
	if i < 0 || i >= len(se.enc) {
		return webhook.Encode(ev, f)
	}
	e := &se.enc[i]
	e.once.Do(func() { e.body, e.ct, e.err = webhook.Encode(ev, f) })
	return e.body, e.ct, e.err
}
