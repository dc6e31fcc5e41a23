package tlsconf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every file named must load: nothing falls back to plaintext or to the
// system's CAs when a file is missing or holds no certificate.
func TestFailsClosed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(empty, []byte("no certificate here"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	for name, err := range map[string]error{
		"server without a key":     func() error { _, err := Server(missing, "", ""); return err }(),
		"server, missing files":    func() error { _, err := Server(missing, missing, ""); return err }(),
		"client, missing CA":       func() error { _, err := Client(missing, "", ""); return err }(),
		"client, CA without certs": func() error { _, err := Client(empty, "", ""); return err }(),
		"client, key without cert": func() error { _, err := Client("", "", missing); return err }(),
	} {
		if err == nil || !strings.HasPrefix(err.Error(), "tls: ") {
			t.Errorf("%s: %v, want a tls error", name, err)
		}
	}
	if tc, err := Client("", "", ""); err != nil || tc.RootCAs != nil || tc.MinVersion == 0 {
		t.Errorf("plain client config: %+v, %v", tc, err)
	}
}
