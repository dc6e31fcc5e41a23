package config_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hookstream/hookstream/internal/config"
)

// vendors stand in for the binary's vendor registry.
var vendors = []config.Vendor{
	{Name: "closer", Auth: []string{"token"}},
	{Name: "pipedrive", Auth: []string{"basic", "token"}},
	{Name: "clinchpad", Auth: []string{"handshake_key", "token"}},
}

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParse(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse([]byte(`
http:
  addr: ":8080"
  body_limit: 2MiB
log:
  retention: 24h
sources:
  - name: pd-eu
    vendor: pipedrive
    auth:
      basic: {username: hook, password: "${PD_PASS}"}
  - name: pd-us
    vendor: pipedrive
    auth: {basic: {username: hook, password: "${PD_US}"}}
  - name: cp
    vendor: clinchpad
    auth: {handshake_key: "${CP_KEY}"}
  - name: open-closer
    vendor: closer
    auth: none
`), env(map[string]string{"PD_PASS": "p@ss: #1", "PD_US": "123", "CP_KEY": "k"}), vendors)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.BodyLimit != 2<<20 || cfg.Log.Retention != 24*time.Hour || cfg.Subscribe.Heartbeat != 15*time.Second ||
		cfg.Log.LookupBudget != config.DefaultLookupBudget || cfg.Log.GroupCommit != "auto" ||
		cfg.Log.Replicas != 1 || cfg.Log.FsyncInterval != 2*time.Minute {
		t.Errorf("sizes/durations/defaults wrong: %+v", cfg)
	}
	if cfg.Quarantine.MaxBytes != 1<<30 || cfg.Quarantine.MaxAge != 720*time.Hour {
		t.Errorf("quarantine defaults: %+v, want 1GiB and 720h", cfg.Quarantine)
	}
	if sub := cfg.Subscribe; sub.MaxStreams != 1000 || sub.MaxStreamsPerToken != 100 || sub.StreamBuffer != 1<<20 ||
		sub.BufferBudget != 256<<20 || cfg.Log.ReadBudget != 16<<20 {
		t.Errorf("stream limits and budgets: %+v, log.read_budget %d", sub, cfg.Log.ReadBudget)
	}
	if got := cfg.Sources[0].Auth.Basic.Password; got != "p@ss: #1" {
		t.Errorf("expanded password = %q", got)
	}
	if got := cfg.Sources[1].Auth.Basic.Password; got != "123" {
		t.Errorf("numeric-looking secret = %q", got)
	}
	if !cfg.Sources[3].Auth.None {
		t.Error("auth: none not recognised")
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct{ yaml, want string }{
		"unset env":                        {"sources: [{name: a, vendor: closer, auth: {token: \"${NOPE}\"}}]", "NOPE is not set"},
		"no auth":                          {"sources: [{name: a, vendor: closer}]", "no auth configured"},
		"two auths":                        {"sources: [{name: a, vendor: closer, auth: {token: x, handshake_key: y}}]", "set exactly one"},
		"bad vendor":                       {"sources: [{name: a, vendor: hubspot, auth: none}]", "vendor must be one of"},
		"bad name":                         {"sources: [{name: A/B, vendor: closer, auth: none}]", "name must be"},
		"dup name":                         {"sources: [{name: a, vendor: closer, auth: none}, {name: a, vendor: closer, auth: none}]", "duplicate source"},
		"no sources":                       {"http: {addr: ':1'}", "no sources"},
		"unknown key":                      {"htp: {}\nsources: [{name: a, vendor: closer, auth: none}]", `line 1 (htp): unknown key "htp"`},
		"empty file":                       {"# only a comment\n", "the file holds no settings"},
		"unknown key inline":               {"api: {tokens: [{name: a, scope: read, tokn: x}]}\nsources: [{name: a, vendor: closer, auth: none}]", `unknown key "tokn"`},
		"auth word":                        {"sources: [{name: a, vendor: closer, auth: off}]", "auth must be `none`"},
		"basic no pass":                    {"sources: [{name: a, vendor: pipedrive, auth: {basic: {username: u}}}]", "needs username and password"},
		"body too large":                   {"http: {body_limit: 8MiB}\nsources: [{name: a, vendor: closer, auth: none}]", "below log.max_message_size"},
		"bad size":                         {"http: {body_limit: lots}\nsources: [{name: a, vendor: closer, auth: none}]", "is not a size"},
		"quarantine smaller than one body": {"quarantine: {max_bytes: 1MiB}\nsources: [{name: a, vendor: closer, auth: none}]", "quarantine.max_bytes"},
		"quarantine age too short":         {"quarantine: {max_age: 10m}\nsources: [{name: a, vendor: closer, auth: none}]", "quarantine.max_age 10m0s must be at least 1h"},
		"auth the vendor cannot send":      {"sources: [{name: a, vendor: closer, auth: {basic: {username: u, password: p}}}]", "closer cannot send auth basic; use one of token"},
		"tiny budget":                      {"log: {lookup_budget: 3}\nsources: [{name: a, vendor: closer, auth: none}]", "log.lookup_budget must be between"},
		"tiny buffer":                      {"subscribe: {stream_buffer: 1KiB}\nsources: [{name: a, vendor: closer, auth: none}]", "at least 16KiB"},
		"budget < buf":                     {"subscribe: {stream_buffer: 2MiB, buffer_budget: 1MiB}\nsources: [{name: a, vendor: closer, auth: none}]", "no more than subscribe.buffer_budget"},
		"read budget":                      {"subscribe: {stream_buffer: 4MiB}\nlog: {read_budget: 1MiB}\nsources: [{name: a, vendor: closer, auth: none}]", "log.read_budget"},
		"cors path":                        {"http: {cors: {allowed_origins: ['https://a.example/app']}}\nsources: [{name: a, vendor: closer, auth: none}]", "http.cors.allowed_origins[0]"},
		"cors star and more":               {"http: {cors: {allowed_origins: ['*', 'https://a.example']}}\nsources: [{name: a, vendor: closer, auth: none}]", "http.cors.allowed_origins[0]: \"*\""},
		"group commit":                     {"log: {group_commit: yes}\nsources: [{name: a, vendor: closer, auth: none}]", "log.group_commit must be auto, on or off"},
		"neg streams":                      {"subscribe: {max_streams: -1}\nsources: [{name: a, vendor: closer, auth: none}]", "must not be negative"},
		"auth key typo beside a token":     {"sources: [{name: a, vendor: closer, auth: {token: 0123456789abcdef, tokn: x}}]", `line 1: unknown key "tokn" in auth`},
		"basic key typo":                   {"sources: [{name: a, vendor: pipedrive, auth: {basic: {username: u, pasword: p}}}]", `unknown key "pasword" in auth.basic`},
		"short token":                      {"sources: [{name: a, vendor: closer, auth: {token: short}}]", "auth.token must be at least 16 characters"},
		"bad duration names its key":       {"http:\n  read_timeout: 30\nsources: [{name: a, vendor: closer, auth: none}]", "line 2 (http.read_timeout): cannot unmarshal"},
		"bad size names its key":           {"log:\n  dedup_guard: 1m\n  max_message_size: lots\nsources: [{name: a, vendor: closer, auth: none}]", "line 3 (log.max_message_size):"},
		"two ways to NATS":                 {"log: {url: 'nats://n:4222', creds_file: a.creds, token: t0k3n}\nsources: [{name: a, vendor: closer, auth: none}]", "not creds_file and token"},
		"NATS user without password":       {"log: {url: 'nats://n:4222', user: hs}\nsources: [{name: a, vendor: closer, auth: none}]", "set both user and password"},
		"NATS cert without key":            {"log: {url: 'tls://n:4222', tls: {cert: c.pem}}\nsources: [{name: a, vendor: closer, auth: none}]", "log.tls: set both cert and key"},
		"replicas on the embedded server":  {"log: {replicas: 3}\nsources: [{name: a, vendor: closer, auth: none}]", "log.replicas 3 needs an external cluster"},
		"credentials without a server":     {"log: {token: t0k3n}\nsources: [{name: a, vendor: closer, auth: none}]", "set log.url"},
		"short dedup window":               {"log: {dedup_window: 30m}\nsources: [{name: a, vendor: closer, auth: none}]", "log.dedup_window 30m0s must be at least 1h0m0s"},
		"retention below the window":       {"log: {retention: 1h}\nsources: [{name: a, vendor: closer, auth: none}]", "must not be longer than log.retention 1h0m0s"},
		"one address for both listeners":   {"http: {addr: '127.0.0.1:7000'}\ngrpc: {addr: '127.0.0.1:7000'}\nsources: [{name: a, vendor: closer, auth: none}]", "need their own"},
		"dedup guard too short":            {"log: {dedup_guard: 10ms}\nsources: [{name: a, vendor: closer, auth: none}]", "log.dedup_guard 10ms must be between 100ms"},
		"body twice past the message size": {"http: {body_limit: 5MiB}\nsources: [{name: a, vendor: closer, auth: none}]", "does not fit log.max_message_size"},
		"negative timeout":                 {"http: {read_timeout: -1s}\nsources: [{name: a, vendor: closer, auth: none}]", "http.read_timeout -1s must be positive"},
		"negative heartbeat":               {"subscribe: {heartbeat: -1s}\nsources: [{name: a, vendor: closer, auth: none}]", "subscribe.heartbeat -1s must be positive"},
		"port out of range":                {"http: {addr: \"127.0.0.1:99999\"}\nsources: [{name: a, vendor: closer, auth: none}]", "http.addr \"127.0.0.1:99999\": the port must be a number from 0 to 65535"},
		"address without a port":           {"grpc: {addr: localhost}\nsources: [{name: a, vendor: closer, auth: none}]", "grpc.addr \"localhost\": must be host:port"},
		"size past 64 bits":                {"log: {min_free_disk: 99999999999GiB}\nsources: [{name: a, vendor: closer, auth: none}]", "\"99999999999GiB\" is too large a size"},
		"no room kept on the disk":         {"log: {min_free_disk: 1MiB}\nsources: [{name: a, vendor: closer, auth: none}]", "log.min_free_disk 1048576 must be at least 16MiB"},
	} {
		_, err := config.Parse([]byte(tc.yaml), env(nil), vendors)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
}

func TestParseQuarantineLimits(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse([]byte("http: {body_limit: 16KiB}\nquarantine: {max_bytes: 96KiB, max_age: 48h}\nsources: [{name: a, vendor: closer, auth: none}]"), env(nil), vendors)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Quarantine.MaxBytes != 96<<10 || cfg.Quarantine.MaxAge != 48*time.Hour {
		t.Errorf("quarantine: %+v, want 96KiB and 48h", cfg.Quarantine)
	}
}

func TestLoadOrGenerate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg, path, created, err := config.LoadOrGenerate(dir, vendors)
	if err != nil || !created {
		t.Fatalf("first call: created=%v err=%v", created, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("generated file mode: %v %v", fi.Mode(), err)
	}
	if len(cfg.Sources) != 3 {
		t.Fatalf("want one source per vendor, got %d", len(cfg.Sources))
	}
	scopes := map[string]bool{}
	for _, tok := range cfg.API.Tokens {
		if tok.Token == "" {
			t.Errorf("generated token %q has no clear-text token", tok.Name)
		}
		scopes[tok.Scope] = true
	}
	if len(cfg.API.Tokens) != 2 || !scopes["admin"] || !scopes["read"] {
		t.Errorf("want an admin and a read token, got %+v", cfg.API.Tokens)
	}
	again, _, created, err := config.LoadOrGenerate(dir, vendors)
	if err != nil || created {
		t.Fatalf("second call: created=%v err=%v", created, err)
	}
	if again.Sources[1].Auth.Basic.Password != cfg.Sources[1].Auth.Basic.Password {
		t.Error("secrets changed between starts")
	}
}

// log.keep_raw is on unless set to false.
func TestParseKeepRaw(t *testing.T) {
	t.Parallel()
	for yaml, want := range map[string]bool{
		"":                         true,
		"log: {keep_raw: true}\n":  true,
		"log: {keep_raw: false}\n": false,
		"log: {data_dir: ./x}\n":   true,
	} {
		cfg, err := config.Parse([]byte(yaml+"sources: [{name: a, vendor: closer, auth: none}]"), env(nil), vendors)
		if err != nil {
			t.Fatalf("%q: %v", yaml, err)
		}
		if got := *cfg.Log.KeepRaw; got != want {
			t.Errorf("%q: keep_raw %v, want %v", yaml, got, want)
		}
	}
}

// ${NAME} in an unquoted value is read as if written there (a number for
// a number), quoted it is text; an empty variable is as missing as an
// unset one, and every missing one is named at once.
func TestParseEnvironment(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse([]byte(`
sources:
  - name: a
    vendor: closer
    rate_limit: ${RATE}
    auth:
      token: ${TOKEN}
`), env(map[string]string{"RATE": "5", "TOKEN": "0123456789abcdef0123"}), vendors)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Sources[0].RateLimit != 5 || cfg.Sources[0].Auth.Token != "0123456789abcdef0123" {
		t.Errorf("rate_limit %v, token %q", cfg.Sources[0].RateLimit, cfg.Sources[0].Auth.Token)
	}
	_, err = config.Parse([]byte(`
sources:
  - name: a
    vendor: pipedrive
    auth: {basic: {username: "${USER}", password: "${PASS}"}}
  - name: b
    vendor: clinchpad
    auth: {handshake_key: "${KEY}"}
`), env(map[string]string{"PASS": ""}), vendors)
	for _, want := range []string{"environment variable USER is not set", "line 5: environment variable PASS is empty", "environment variable KEY is not set"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want %q", err, want)
		}
	}
}
