package budget

import (
	"context"
	"testing"
	"time"
)

func TestBudget(t *testing.T) {
	b := New(100)
	if !b.TryAcquire(60) || b.TryAcquire(50) || !b.TryAcquire(40) {
		t.Fatal("TryAcquire must take what fits and refuse what does not")
	}
	b.Release(100)
	if !b.TryAcquire(500) {
		t.Fatal("one request larger than the budget must pass when nothing is held")
	}
	b.Release(500)

	b.Force(90)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := b.AcquireWithin(ctx, 10, 75); err == nil {
		t.Fatal("AcquireWithin took more than its share")
	}
	got := make(chan error, 1)
	go func() { got <- b.Acquire(context.Background(), 30) }()
	select {
	case <-got:
		t.Fatal("Acquire did not wait for room")
	case <-time.After(20 * time.Millisecond):
	}
	b.Release(40)
	if err := <-got; err != nil || b.Used() != 80 {
		t.Fatalf("after a release: %v, used %d (want 80)", err, b.Used())
	}
}
