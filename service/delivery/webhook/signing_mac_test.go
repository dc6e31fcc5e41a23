package webhook

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"testing"
)

// appendMAC is HMAC-SHA256 for keys shorter than, as long as and longer
// than the hash's block, and bodies of any length.
func TestAppendMACIsHMAC(t *testing.T) {
	for _, kl := range []int{0, 1, 24, 32, 63, 64, 65, 200} {
		for _, bl := range []int{0, 1, 55, 64, 3000, 70 << 10} {
			key, prefix, body := make([]byte, kl), []byte("msg_2x.1700000000."), make([]byte, bl)
			_, _ = rand.Read(key)
			_, _ = rand.Read(body)
			h := hmac.New(sha256.New, key)
			h.Write(prefix)
			h.Write(body)
			want := h.Sum([]byte("x"))
			if got := appendMAC([]byte("x"), key, prefix, body); !bytes.Equal(got, want) {
				t.Errorf("key %d bytes, body %d: %x, want %x", kl, bl, got, want)
			}
		}
	}
	dst, key, prefix, body := make([]byte, 0, 64), []byte("key"), []byte("p."), make([]byte, 3000)
	if n := testing.AllocsPerRun(100, func() { appendMAC(dst[:0], key, prefix, body) }); n > 0 {
		t.Errorf("appendMAC allocates %.0f times per call", n)
	}
}
