package delivery

import (
	"slices"
	"testing"
	"time"
)

// TestSigningKeys: only the keys whose secret has not expired sign; the
// endpoint's own list is shared while none has, and never changed.
func TestSigningKeys(t *testing.T) {
	now := time.Now()
	past, future := now.Add(-time.Second), now.Add(time.Hour)
	a, b, c := []byte("a"), []byte("b"), []byte("c")
	for _, tc := range []struct {
		name    string
		expires []time.Time
		want    [][]byte
	}{
		{"none expire", []time.Time{{}, future, future}, [][]byte{a, b, c}},
		{"the last expired", []time.Time{{}, future, past}, [][]byte{a, b}},
		{"the middle expired", []time.Time{{}, past, future}, [][]byte{a, c}},
		{"all but the newest expired", []time.Time{{}, past, now}, [][]byte{a}},
		{"fewer expiries than keys", []time.Time{past}, [][]byte{b, c}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ep := &Endpoint{Expires: tc.expires, keys: [][]byte{a, b, c}}
			got := ep.signingKeys(now)
			if !slices.EqualFunc(got, tc.want, slices.Equal) {
				t.Errorf("signingKeys = %q, want %q", got, tc.want)
			}
			if len(ep.keys) != 3 || string(ep.keys[0]) != "a" || string(ep.keys[1]) != "b" || string(ep.keys[2]) != "c" {
				t.Errorf("the endpoint's keys changed: %q", ep.keys)
			}
		})
	}
}
