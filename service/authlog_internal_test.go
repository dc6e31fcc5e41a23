package service

import (
	"testing"
	"time"
)

// A source's authentication failures are logged once per authLogEvery;
// the next line says how many were not.
func TestAuthLogOncePerInterval(t *testing.T) {
	var s sourceSeen
	t0 := time.Unix(1_800_000_000, 0)
	for _, c := range []struct {
		at       time.Duration
		ok       bool
		wantHeld int
	}{
		{0, true, 0}, {time.Second, false, 0}, {2 * time.Second, false, 0}, {authLogEvery, true, 2}, {authLogEvery + time.Second, false, 0}, {3 * authLogEvery, true, 1},
	} {
		ok, held := s.authLog(t0.Add(c.at))
		if ok != c.ok || held != c.wantHeld {
			t.Errorf("at +%s: logged %v with %d held, want %v with %d", c.at, ok, held, c.ok, c.wantHeld)
		}
	}
}
