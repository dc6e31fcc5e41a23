// Package budget counts bytes held by many holders against one limit, and
// lets holders wait for their share.
package budget

import (
	"context"
	"sync"
)

// Budget is a limit on bytes held at once. It is safe for concurrent use.
//
// One request larger than the whole limit is still granted when nothing
// else is held, so an oversized item slows things down instead of blocking
// forever.
type Budget struct {
	mu    sync.Mutex
	limit int64
	used  int64
	freed chan struct{} // made when someone waits; closed (and dropped) at the next release
}

// New returns a budget of limit bytes.
func New(limit int64) *Budget {
	return &Budget{limit: limit}
}

// TryAcquire takes n bytes if they fit (or nothing is held) and reports
// whether it did.
func (b *Budget) TryAcquire(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used > 0 && b.used+n > b.limit {
		return false
	}
	b.used += n
	return true
}

// Acquire takes n bytes, waiting until they fit or ctx ends.
func (b *Budget) Acquire(ctx context.Context, n int64) error {
	return b.AcquireWithin(ctx, n, b.limit)
}

// AcquireWithin is Acquire for a holder that may use no more than limit of
// the budget (all holders together), keeping the rest for others.
func (b *Budget) AcquireWithin(ctx context.Context, n, limit int64) error {
	for {
		b.mu.Lock()
		if b.used == 0 || b.used+n <= min(limit, b.limit) {
			b.used += n
			b.mu.Unlock()
			return nil
		}
		freed := b.freedLocked()
		b.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Force takes n bytes whether or not they fit: for bytes that are already
// held (a read that returned a little more than it reserved).
func (b *Budget) Force(n int64) {
	b.mu.Lock()
	b.used += n
	b.mu.Unlock()
}

// Release gives n bytes back.
func (b *Budget) Release(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	if b.used < 0 {
		panic("budget: released more than was acquired")
	}
	// Nobody waits, nearly always: then there is nothing to close, and no
	// channel is made for the next release either.
	if b.freed != nil {
		close(b.freed)
		b.freed = nil
	}
	b.mu.Unlock()
}

// Freed returns a channel closed at the next release: a holder that could
// not acquire waits on it before trying again.
func (b *Budget) Freed() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.freedLocked()
}

// freedLocked is Freed with b.mu held.
func (b *Budget) freedLocked() chan struct{} {
	if b.freed == nil {
		b.freed = make(chan struct{})
	}
	return b.freed
}

// Used is the number of bytes held now.
func (b *Budget) Used() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// Limit is the budget's size.
func (b *Budget) Limit() int64 { return b.limit }
