package service

import (
	"context"
	"sync"

	"github.com/hookstream/hookstream/service/auth"
	"github.com/hookstream/hookstream/service/budget"
)

// Memory held by Subscribe streams is bounded by configuration, whatever
// their clients do:
//
//   - Open streams are capped per process and per API token
//     (streamLimits); beyond the caps a stream is refused with
//     RESOURCE_EXHAUSTED, reason TOO_MANY_STREAMS.
//   - A live stream's queue of shared events is capped in bytes (the hub);
//     beyond it the stream is detached and catches up on its own.
//   - Everything a stream holds beyond that queue (events read from the
//     log to catch up, the event waiting for its sender, events handed to
//     gRPC until their bytes have left) is charged to one process-wide
//     buffer budget. A stream that finds the budget used up waits (it still
//     gets heartbeats); a stream whose client stalls keeps its share until
//     it is dropped, and its place until its last bytes have left.

// streamLimits caps open streams, per process and per API token.
type streamLimits struct {
	max, perToken int

	mu      sync.Mutex
	open    int
	byToken map[string]int
}

func newStreamLimits(limit, perToken int) *streamLimits {
	return &streamLimits{max: limit, perToken: perToken, byToken: map[string]int{}}
}

// admit takes a place for a stream of token ("" when calls carry no API
// token: only the process cap applies); release gives it back (once).
func (l *streamLimits) admit(token string) (release func(), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open >= l.max {
		return nil, errTooManyStreams("process", l.max)
	}
	if token != "" && l.byToken[token] >= l.perToken {
		return nil, errTooManyStreams("token", l.perToken)
	}
	l.open++
	if token != "" {
		l.byToken[token]++
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.open--
			if token != "" {
				if l.byToken[token]--; l.byToken[token] == 0 {
					delete(l.byToken, token)
				}
			}
		})
	}, nil
}

// sharedCharge is one charge on the buffer budget for an event that many
// streams may hold at once (an event from the hub): the first holder pays
// it, the last to let go gives it back.
type sharedCharge struct {
	mu      sync.Mutex
	holders int
}

// tryHold adds a holder; false when the event is held by no one yet and
// its n bytes do not fit the budget.
func (c *sharedCharge) tryHold(b *budget.Budget, n int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.holders == 0 && !b.TryAcquire(n) {
		return false
	}
	c.holders++
	return true
}

func (c *sharedCharge) release(b *budget.Budget, n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.holders--; c.holders == 0 {
		b.Release(n)
	}
}

// hold is a stream's charge on the buffer budget for one message.
type hold struct {
	n      int64
	shared *sharedCharge // nil: the stream's own charge of n bytes
}

func (h hold) release(b *budget.Budget) {
	switch {
	case h.shared != nil:
		h.shared.release(b, h.n)
	case h.n > 0:
		b.Release(h.n)
	}
}

// flight tracks the messages a stream has handed to gRPC, so their
// charges are given back once their bytes have been written out.
type flight struct {
	b *budget.Budget

	mu     sync.Mutex
	queued int64 // wire bytes of every message handed to gRPC
	items  []flightItem
}

type flightItem struct {
	end, size int64 // queued after this message; its wire size
	hold      hold
}

// add records a message of size wire bytes about to be sent.
func (f *flight) add(size int64, h hold) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queued += size
	f.items = append(f.items, flightItem{end: f.queued, size: size, hold: h})
}

// unsent takes back the last message added: gRPC did not take it.
func (f *flight) unsent() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := len(f.items); n > 0 {
		it := f.items[n-1]
		f.items = f.items[:n-1]
		f.queued -= it.size
		it.hold.release(f.b)
	}
}

// written gives back the charges of messages whose bytes have all been
// written (written is the stream's DATA bytes so far).
func (f *flight) written(written int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := 0
	for ; i < len(f.items) && f.items[i].end <= written; i++ {
		f.items[i].hold.release(f.b)
	}
	f.items = f.items[i:]
}

// allButLast gives back every charge but the newest message's: without
// byte counts, a Send that returned means the message before it has
// (nearly) gone out.
func (f *flight) allButLast() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := len(f.items); n > 1 {
		for _, it := range f.items[:n-1] {
			it.hold.release(f.b)
		}
		f.items = f.items[n-1:]
	}
}

// unwritten is how many bytes handed to gRPC have not been written yet.
func (f *flight) unwritten(written int64) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.queued - written
}

// clear gives back every charge.
func (f *flight) clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, it := range f.items {
		it.hold.release(f.b)
	}
	f.items = nil
}

// apiTokenKey carries the caller's API token (name and scope) in a
// context.
type apiTokenKey struct{}

type callerToken struct {
	name  string
	scope auth.APIScope
}

func withAPIToken(ctx context.Context, name string, scope auth.APIScope) context.Context {
	return context.WithValue(ctx, apiTokenKey{}, callerToken{name, scope})
}

// apiToken is the name of the API token the call came with ("" if none).
func apiToken(ctx context.Context) string {
	t, _ := ctx.Value(apiTokenKey{}).(callerToken)
	return t.name
}

// readOnlyCaller says whether the call came with an API token that can
// only read (calls made in process carry none).
func readOnlyCaller(ctx context.Context) bool {
	t, ok := ctx.Value(apiTokenKey{}).(callerToken)
	return ok && t.scope < auth.ScopeAdmin
}
