package config

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// GeneratedFile is the name of the config written into the data dir when
// hookstream starts without one.
const GeneratedFile = "hookstream.generated.yaml"

// LoadOrGenerate returns the config in dataDir/GeneratedFile, writing one
// first (with one source per vendor, named after it, using the vendor's
// first auth scheme with fresh random secrets, mode 0600) when there is
// none, and an admin and a read API token. created says whether it was
// written now.
func LoadOrGenerate(dataDir string, vendors []Vendor) (cfg *Config, path string, created bool, err error) {
	path = filepath.Join(dataDir, GeneratedFile)
	if _, err := os.Stat(path); err == nil {
		cfg, err := Load(path, vendors)
		return cfg, path, false, err
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, path, false, fmt.Errorf("config: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, path, false, fmt.Errorf("config: %w", err)
	}
	var sources strings.Builder
	for _, v := range vendors {
		fmt.Fprintf(&sources, "  - name: %s\n    vendor: %s\n    auth:\n", v.Name, v.Name)
		switch v.Auth[0] {
		case "basic":
			fmt.Fprintf(&sources, "      basic:\n        username: %s\n        password: %q\n", v.Name, randomSecret())
		default: // token, handshake_key
			fmt.Fprintf(&sources, "      %s: %q\n", v.Auth[0], randomSecret())
		}
	}
	text := fmt.Sprintf(`# Written by hookstream on first start, because it was run without --config.
# It holds secrets: keep it private (mode 0600). Edit it, or copy it and pass
# --config to take over. Reference: README.md, "Configuration".
log:
  data_dir: %q
api:
  tokens:
    - name: admin
      scope: admin
      token: %q
    # For readers (EventService, /metrics), e.g. hookstream tail.
    - name: read
      scope: read
      token: %q
delivery:
  # Seals the signing secrets of outbound endpoints at rest.
  secret_key: %q
# Traces (OpenTelemetry) are off; to send them to an OTLP receiver:
# telemetry: {otlp_endpoint: "http://localhost:4318"}
sources:
%s`, dataDir, randomSecret(), randomSecret(), randomKey(), sources.String())
	// O_EXCL: two first starts racing cannot both write secrets.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, path, false, fmt.Errorf("config: %w", err)
	}
	if _, err := f.WriteString(text); err != nil {
		_ = f.Close()
		return nil, path, false, fmt.Errorf("config: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, path, false, fmt.Errorf("config: %w", err)
	}
	cfg, err = Load(path, vendors)
	return cfg, path, true, err
}

// randomKey returns 256 random bits in standard base64.
func randomKey() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.StdEncoding.EncodeToString(b)
}

// randomSecret returns 192 random bits, URL-safe.
func randomSecret() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
