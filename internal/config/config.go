// Package config loads hookstream's YAML configuration, expands ${ENV}
// references in it, applies defaults and checks it, failing closed on
// missing secrets.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole configuration. Durations are Go duration strings
// ("15s"); sizes are bytes or strings like "1MiB".
type Config struct {
	HTTP      HTTP      `yaml:"http"`
	GRPC      GRPC      `yaml:"grpc"`
	API       API       `yaml:"api"`
	Log       Log       `yaml:"log"`
	Subscribe Subscribe `yaml:"subscribe"`
	// Quarantine limits the store of authenticated requests that could not
	// be normalized.
	Quarantine Quarantine `yaml:"quarantine"`
	// Delivery configures outbound webhooks (EndpointService).
	Delivery Delivery `yaml:"delivery"`
	// Telemetry exports traces over OTLP (off unless an endpoint is set).
	Telemetry Telemetry `yaml:"telemetry"`
	// ShutdownTimeout bounds graceful shutdown (default 15s).
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	Sources         []Source      `yaml:"sources"`
}

// HTTP configures the webhook and REST listener.
type HTTP struct {
	// Addr to listen on (default 127.0.0.1:8080; put a TLS-terminating
	// proxy in front, or set ":8080" to listen on every interface).
	Addr string `yaml:"addr"`
	// PublicURL is how vendors reach this server (e.g.
	// https://hooks.example.com); used to print webhook URLs.
	PublicURL string `yaml:"public_url"`
	// BodyLimit caps a webhook body (default 1MiB).
	BodyLimit ByteSize `yaml:"body_limit"`
	// MaxHeaderBytes caps request headers (default 64KiB).
	MaxHeaderBytes ByteSize `yaml:"max_header_bytes"`
	// ReadHeaderTimeout, ReadTimeout and IdleTimeout bound slow clients
	// (defaults 5s, 30s, 120s).
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	ReadTimeout       time.Duration `yaml:"read_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	// TLS serves HTTPS from these PEM files when set.
	TLS TLS `yaml:"tls"`
	// CORS lets browsers on other origins call the REST, Connect and
	// gRPC-Web routes (off by default).
	CORS CORS `yaml:"cors"`
}

// CORS configures cross-origin requests on the HTTP port.
type CORS struct {
	// AllowedOrigins are the origins (scheme://host[:port]) browsers may
	// call from; empty (the default) answers no cross-origin request. "*"
	// allows every origin: not for production with API tokens, since any
	// page a token holder opens could then use the token it is given.
	AllowedOrigins []string `yaml:"allowed_origins"`
}

// TLS names PEM files. ClientCA, where supported, requires and verifies
// client certificates signed by that CA.
type TLS struct {
	Cert     string `yaml:"cert"`
	Key      string `yaml:"key"`
	ClientCA string `yaml:"client_ca"`
}

// Enabled reports whether a certificate is configured.
func (t TLS) Enabled() bool { return t.Cert != "" }

// API configures access to everything but the webhook route.
type API struct {
	// Tokens are the bearer tokens accepted on the read and admin APIs.
	Tokens []APIToken `yaml:"tokens"`
	// UnknownSource says what a webhook for an unconfigured source gets:
	// not_found (404, the default: tells operators about a typo) or
	// unauthorized (401, the same answer as bad credentials, so callers
	// cannot probe which sources exist).
	UnknownSource string `yaml:"unknown_source"`
	// PublicMetrics serves /metrics without a token (default false: a
	// read-scope token is needed).
	PublicMetrics bool `yaml:"public_metrics"`
}

// APIToken is one bearer token: the token itself, or its SHA-256 in hex
// so the config need not hold the secret.
type APIToken struct {
	Name   string `yaml:"name"`
	Scope  string `yaml:"scope"`
	Token  string `yaml:"token"`
	SHA256 string `yaml:"sha256"`
}

// GRPC configures the gRPC listener.
type GRPC struct {
	// Addr to listen on (default 127.0.0.1:9090).
	Addr string `yaml:"addr"`
	// Reflection enables gRPC server reflection (default true).
	Reflection *bool `yaml:"reflection"`
	// TLS serves gRPC over TLS; with client_ca, clients must present a
	// certificate signed by it.
	TLS TLS `yaml:"tls"`
}

// Log configures the event log.
type Log struct {
	// DataDir for the embedded server and generated secrets (default ./data).
	DataDir string `yaml:"data_dir"`
	// URL of an external NATS cluster; empty runs NATS embedded.
	URL       string `yaml:"url"`
	CredsFile string `yaml:"creds_file"`
	User      string `yaml:"user"`
	Password  string `yaml:"password"`
	Token     string `yaml:"token"`
	// NkeyFile is a file holding a user's nkey seed (SU…).
	NkeyFile string `yaml:"nkey_file"`
	TLS      struct {
		CA   string `yaml:"ca"`
		Cert string `yaml:"cert"`
		Key  string `yaml:"key"`
	} `yaml:"tls"`
	// Replicas of the stream in a cluster (default 1; use 3 for a cluster).
	Replicas int `yaml:"replicas"`
	// Retention of events (default 168h).
	Retention time.Duration `yaml:"retention"`
	// DedupWindow for event ids (default 2h, at least 1h). The ids are kept
	// in an on-disk index, so a long window costs disk, not memory.
	DedupWindow time.Duration `yaml:"dedup_window"`
	// DedupGuard is JetStream's in-memory dedup window that covers the
	// moment before the index has seen an event (default 1m). Memory grows
	// with rate x guard.
	DedupGuard time.Duration `yaml:"dedup_guard"`
	// IndexDir holds the dedup index (default <data_dir>/idindex/<stream>);
	// every replica needs its own.
	IndexDir string `yaml:"index_dir"`
	// Fsync is "interval" (default) or "always".
	Fsync string `yaml:"fsync"`
	// FsyncInterval with fsync: interval (default 2m).
	FsyncInterval time.Duration `yaml:"fsync_interval"`
	// GroupCommit is "auto" (default), "on" or "off": whether concurrent
	// writes share one fsync. auto: with the embedded server and fsync:
	// always, shared syncs (one sync for many writes) on Linux, atomic
	// batches elsewhere; on: JetStream atomic batches, on an external
	// server too; off: the server syncs each write.
	GroupCommit string `yaml:"group_commit"`
	// MaxMessageSize of the embedded server (default 8MiB).
	MaxMessageSize ByteSize `yaml:"max_message_size"`
	// MinFreeDisk is the free space kept on the file systems of data_dir
	// (embedded) and index_dir (default 256MiB, at least 16MiB): below
	// it, webhooks are answered 503 at once instead of filling the disk,
	// which would stop the embedded server's JetStream until a restart.
	MinFreeDisk ByteSize `yaml:"min_free_disk"`
	// ConnectTimeout bounds reaching the log and setting up its stream at
	// start, while a cluster is still forming (default 30s).
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// LookupBudget caps the log reads of one GetEvent (default
	// DefaultLookupBudget). An id of the dedup window costs one read; an
	// older one is searched for, newest first, until the budget is spent.
	LookupBudget int `yaml:"lookup_budget"`
	// ReadBudget caps the bytes of client reads (Subscribe catch-up,
	// ListEvents) in flight from NATS at once (default 16MiB). Reads run
	// on a connection of their own, never the one ingest writes on.
	ReadBudget ByteSize `yaml:"read_budget"`
	// KeepRaw stores the vendor's original request body (secrets removed,
	// as in quarantine) with every event, as Event.raw (default true). An
	// event then takes about twice the body, so http.body_limit must leave
	// room for two bodies in one log message (see internal/app).
	KeepRaw *bool `yaml:"keep_raw"`
}

// Quarantine limits the quarantine bucket. Both limits apply to an
// existing bucket at start too.
type Quarantine struct {
	// MaxBytes caps the bucket (default 1GiB, at least http.body_limit +
	// 64KiB). When it is full, a webhook that needs quarantine is answered
	// 503 with Retry-After and not stored; the vendor's retry is stored
	// once there is room.
	MaxBytes ByteSize `yaml:"max_bytes"`
	// MaxAge removes an entry this long after it was last written,
	// reprocessed or not (default 720h, at least 1h).
	MaxAge time.Duration `yaml:"max_age"`
}

// Quarantine defaults.
const (
	DefaultQuarantineMaxBytes ByteSize = 1 << 30
	DefaultQuarantineMaxAge            = 30 * 24 * time.Hour
)

// Subscribe configures event streams.
type Subscribe struct {
	// Heartbeat interval on idle streams (default 15s).
	Heartbeat time.Duration `yaml:"heartbeat"`
	// StallTimeout ends a stream whose client has accepted no byte of what
	// was sent to it for this long (default 30s); it can resume from its
	// cursor. A client that keeps reading, however slowly, is not stalled.
	StallTimeout time.Duration `yaml:"stall_timeout"`
	// MaxStreams caps open streams on this server (default 1000), and
	// MaxStreamsPerToken those of one API token (default 100); beyond
	// them a stream is refused with RESOURCE_EXHAUSTED (TOO_MANY_STREAMS).
	MaxStreams         int `yaml:"max_streams"`
	MaxStreamsPerToken int `yaml:"max_streams_per_token"`
	// StreamBuffer is how much one live stream may have queued before it
	// leaves the shared reader to catch up on its own, and the size of its
	// catch-up reads (default 1MiB; one event always fits).
	StreamBuffer ByteSize `yaml:"stream_buffer"`
	// BufferBudget caps what all streams together hold beyond their live
	// queues: catch-up reads and events not yet written to their clients
	// (default 256MiB). When it is used up, streams wait.
	BufferBudget ByteSize `yaml:"buffer_budget"`
}

// Delivery configures pushing events to users' endpoints.
type Delivery struct {
	// Timeout bounds one delivery attempt, from connecting to reading the
	// response (default 15s).
	Timeout time.Duration `yaml:"timeout"`
	// RetrySchedule is the wait before each attempt after a failure: the
	// first entry before the second attempt, and so on (default 5s, 5m,
	// 30m, 2h, 5h, 10h, 10h: eight attempts over about 28 hours). The first
	// attempt is immediate. Each wait is jittered by up to Jitter either
	// way.
	RetrySchedule []time.Duration `yaml:"retry_schedule"`
	// Jitter is the fraction each wait varies by (default 0.1).
	Jitter *float64 `yaml:"jitter"`
	// DisableAfter disables an endpoint whose every attempt has failed
	// for this long (default 120h, 5 days).
	DisableAfter time.Duration `yaml:"disable_after"`
	// MaxInFlight is an endpoint's default of concurrent requests
	// (default 10).
	MaxInFlight int `yaml:"max_in_flight"`
	// MaxPending caps the events of one endpoint waiting for a retry;
	// beyond it the endpoint reads no further events until some are
	// delivered or dead-lettered (default 10000).
	MaxPending int `yaml:"max_pending"`
	// SecretOverlap is how long a rotated-out secret keeps signing next
	// to the new one (default 24h).
	SecretOverlap time.Duration `yaml:"secret_overlap"`
	// AllowNetworks are CIDRs endpoints may resolve to although they are
	// loopback, private, link-local or metadata addresses, which are
	// refused otherwise (after DNS resolution, at connect time).
	AllowNetworks []string `yaml:"allow_networks"`
	// AllowHTTP permits plain http:// endpoint URLs (default false:
	// https only).
	AllowHTTP bool `yaml:"allow_http"`
	// SecretKey, 32 bytes in base64, seals endpoint signing secrets
	// (AES-256-GCM) before they are stored in the log's endpoint bucket.
	// Without it endpoints can be created only with PlainSecrets.
	SecretKey string `yaml:"secret_key"`
	// PlainSecrets stores signing secrets unsealed in the endpoint bucket,
	// readable by anyone who can read the NATS server or its data dir.
	PlainSecrets bool `yaml:"plain_secrets"`
	// MaxEndpoints caps the endpoints (default 1000).
	MaxEndpoints int `yaml:"max_endpoints"`
	// AttemptsRetention is how long delivery attempts are kept, and
	// DeadLetterRetention dead letters (defaults 168h and 720h).
	AttemptsRetention   time.Duration `yaml:"attempts_retention"`
	DeadLetterRetention time.Duration `yaml:"dead_letter_retention"`
}

// Source is one webhook endpoint: POST /v1/webhooks/<name>.
type Source struct {
	Name   string `yaml:"name"`
	Vendor string `yaml:"vendor"`
	Auth   Auth   `yaml:"auth"`
	// RateLimit caps accepted requests per second (0: no limit); above it
	// the source answers 429 with Retry-After.
	RateLimit float64 `yaml:"rate_limit"`
	// Burst is how many requests may arrive at once (default: rate_limit,
	// at least 1).
	Burst int `yaml:"burst"`
}

// Auth is a source's authentication. In YAML it is either the word `none`
// or a mapping with exactly one of basic, handshake_key, token.
type Auth struct {
	None         bool
	Basic        *BasicAuth `yaml:"basic"`
	HandshakeKey string     `yaml:"handshake_key"`
	Token        string     `yaml:"token"`
}

// BasicAuth is HTTP Basic credentials.
type BasicAuth struct {
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

// MinTokenLength is the shortest `auth.token` a source may have: one a
// vendor puts in a URL must not be guessable (service/auth.Token refuses
// shorter ones as well).
const MinTokenLength = 16

// UnmarshalYAML accepts `none` or a mapping.
func (a *Auth) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		if n.Value != "none" {
			return fmt.Errorf("line %d: auth must be `none` or a mapping with basic, handshake_key or token", n.Line)
		}
		*a = Auth{None: true}
		return nil
	}
	// A custom decoder does not pass the strict decoder's check for
	// unknown keys on, so it is done here: a typo (`tokn`, `pasword`)
	// must not leave a source without the credential it meant to set.
	if err := knownKeys(n, "auth", "basic", "handshake_key", "token"); err != nil {
		return err
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "basic" {
			if err := knownKeys(n.Content[i+1], "auth.basic", "username", "password"); err != nil {
				return err
			}
		}
	}
	type plain Auth
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*a = Auth(p)
	return nil
}

// knownKeys refuses a mapping key of n that is not one of keys.
func knownKeys(n *yaml.Node, what string, keys ...string) error {
	if n.Kind != yaml.MappingNode {
		return nil // the decoder names the wrong shape
	}
	for i := 0; i < len(n.Content); i += 2 {
		if k := n.Content[i]; !slices.Contains(keys, k.Value) {
			return fmt.Errorf("line %d: unknown key %q in %s (known: %s)", k.Line, k.Value, what, strings.Join(keys, ", "))
		}
	}
	return nil
}

// Scheme names the configured scheme, "" when none is set.
func (a Auth) Scheme() string {
	var set []string
	if a.None {
		set = append(set, "none")
	}
	if a.Basic != nil {
		set = append(set, "basic")
	}
	if a.HandshakeKey != "" {
		set = append(set, "handshake_key")
	}
	if a.Token != "" {
		set = append(set, "token")
	}
	return strings.Join(set, "+")
}

// ByteSize is a size in bytes, written as a number or with a unit
// (KiB, MiB, GiB, KB, MB, GB).
type ByteSize int64

// UnmarshalYAML parses "1MiB", "512KB" or 1048576.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	s := strings.TrimSpace(n.Value)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: %q is not a size (try 1048576 or 1MiB)", n.Line, n.Value)
	}
	if v > math.MaxInt64/mult {
		return fmt.Errorf("line %d: %q is too large a size", n.Line, n.Value)
	}
	*b = ByteSize(v * mult)
	return nil
}

// DefaultBodyLimit is the webhook body limit unless configured.
const DefaultBodyLimit ByteSize = 1 << 20

// DefaultLookupBudget is log.lookup_budget unless configured. A search
// reads one event per read of the id's 1/256 of the log, so beyond the
// dedup window it covers about 21 minutes of the log at 1,000 events/s,
// 3.5 hours at 100/s and 1.5 days at 10/s, and received_after and
// received_before spanning 10 minutes fit it at 1,000/s. A read takes tens
// of µs on the embedded log (measured: 20–80 µs, so at most about 0.4 s
// per GetEvent) and a network round trip on an external cluster.
const DefaultLookupBudget = 5_000

// Bounds of log.lookup_budget: a search needs a few reads to find its
// way, and a million reads is minutes on an external cluster.
const (
	MinLookupBudget = 16
	MaxLookupBudget = 1_000_000
)

// Vendor is what validation and first-start generation need to know of
// one vendor. The binary's vendor registry provides them; the config keeps
// no vendor list of its own.
type Vendor struct {
	// Name is how a source names the vendor (`vendor: clinchpad`).
	Name string
	// Auth lists the auth schemes the vendor can send; a first start
	// generates the first.
	Auth []string
}

var (
	sourceName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	sha256Hex  = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
)

// Load reads, expands and checks the config file at path; sources may
// name the vendors given.
func Load(path string, vendors []Vendor) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := Parse(raw, os.LookupEnv, vendors)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// Parse decodes YAML, replacing ${NAME} in values with the value lookup
// gives. A reference to an unset or empty variable is an error, so a
// missing secret stops the server instead of becoming an empty password. Sources
// may name the vendors given, each with an auth scheme it can send (or
// `auth: none`).
func Parse(raw []byte, lookup func(string) (string, bool), vendors []Vendor) (*Config, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the file holds no settings (at least sources: is needed)")
		}
		return nil, err
	}
	if err := expand(&root, lookup); err != nil {
		return nil, err
	}
	cfg := &Config{}
	if err := decodeStrict(&root, cfg); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	if err := cfg.validate(vendors); err != nil {
		return nil, err
	}
	return cfg, nil
}

// decodeStrict decodes n rejecting unknown keys, so a typo in a key is an
// error rather than a silently ignored setting.
func decodeStrict(n *yaml.Node, out any) error {
	b, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	err = dec.Decode(out)
	if err == nil {
		return nil
	}
	// The decoder names a line; the key there says more ("line 7
	// (http.read_timeout): cannot unmarshal !!int `30` into
	// time.Duration"), for its errors and those of our own types.
	var doc yaml.Node
	if yaml.Unmarshal(b, &doc) != nil {
		return err
	}
	keys := map[int][]string{}
	keyLines(&doc, "", keys)
	msg := lineRef.ReplaceAllStringFunc(err.Error(), func(m string) string {
		line, _ := strconv.Atoi(lineRef.FindStringSubmatch(m)[1])
		if k := keys[line]; len(k) == 1 {
			return "line " + strconv.Itoa(line) + " (" + k[0] + "):"
		}
		return m
	})
	// "field tokn not found in type config.APIToken" names our Go type.
	msg = unknownField.ReplaceAllString(msg, `unknown key "$1"`)
	return errors.New(msg)
}

// unknownField is the decoder's error for a key the config does not have.
var unknownField = regexp.MustCompile(`field (\S+) not found in type \S+`)

// lineRef is a yaml error's reference to a line.
var lineRef = regexp.MustCompile(`line (\d+):`)

// keyLines records, by line, the dotted path of every key there and of the
// value it holds (sources[0].auth.token).
func keyLines(n *yaml.Node, path string, out map[int][]string) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			keyLines(c, path, out)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			out[k.Line] = append(out[k.Line], p)
			if v.Line != k.Line && v.Kind == yaml.ScalarNode {
				out[v.Line] = append(out[v.Line], p)
			}
			keyLines(v, p, out)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			keyLines(c, fmt.Sprintf("%s[%d]", path, i), out)
		}
	}
}

func expand(n *yaml.Node, lookup func(string) (string, bool)) error {
	var errs []error
	expandNode(n, lookup, &errs)
	return errors.Join(errs...)
}

// expandNode expands n and what it holds, adding a line's error to errs
// for every variable unset or empty (an empty secret is as missing as an
// unset one: a deployment that forgot to fill it in), so one check names
// them all.
func expandNode(n *yaml.Node, lookup func(string) (string, bool), errs *[]error) {
	if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "${") {
		var missing, empty []string
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(m string) string {
			name := m[2 : len(m)-1]
			v, ok := lookup(name)
			switch {
			case !ok:
				missing = append(missing, name)
			case v == "":
				empty = append(empty, name)
			}
			return v
		})
		if len(missing) > 0 {
			*errs = append(*errs, fmt.Errorf("line %d: environment variable %s is not set", n.Line, strings.Join(missing, ", ")))
		}
		if len(empty) > 0 {
			*errs = append(*errs, fmt.Errorf("line %d: environment variable %s is empty", n.Line, strings.Join(empty, ", ")))
		}
		if n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
			n.Tag = "!!str" // quoted: text, whatever it looks like
		} else {
			// Unquoted: read as if written here, so rate_limit: ${RATE}
			// is a number (a text field still takes it as text).
			n.Tag = ""
		}
	}
	for _, c := range n.Content {
		expandNode(c, lookup, errs)
	}
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.HTTP.Addr == "" {
		c.HTTP.Addr = "127.0.0.1:8080"
	}
	if c.HTTP.BodyLimit == 0 {
		c.HTTP.BodyLimit = DefaultBodyLimit
	}
	if c.HTTP.MaxHeaderBytes == 0 {
		c.HTTP.MaxHeaderBytes = 64 << 10
	}
	def(&c.HTTP.ReadHeaderTimeout, 5*time.Second)
	def(&c.HTTP.ReadTimeout, 30*time.Second)
	def(&c.HTTP.IdleTimeout, 120*time.Second)
	if c.GRPC.Addr == "" {
		c.GRPC.Addr = "127.0.0.1:9090"
	}
	if c.GRPC.Reflection == nil {
		t := true
		c.GRPC.Reflection = &t
	}
	if c.Log.DataDir == "" {
		c.Log.DataDir = "./data"
	}
	if c.Log.Fsync == "" {
		c.Log.Fsync = "interval"
	}
	if c.Log.GroupCommit == "" {
		c.Log.GroupCommit = "auto"
	}
	if c.Log.KeepRaw == nil {
		v := DefaultKeepRaw
		c.Log.KeepRaw = &v
	}
	if c.Log.MinFreeDisk == 0 {
		c.Log.MinFreeDisk = DefaultMinFreeDisk
	}
	if c.Log.MaxMessageSize == 0 {
		c.Log.MaxMessageSize = DefaultMaxMessageSize
	}
	if c.Log.Replicas == 0 {
		c.Log.Replicas = DefaultReplicas
	}
	def(&c.Log.FsyncInterval, DefaultFsyncInterval)
	def(&c.Log.ConnectTimeout, DefaultConnectTimeout)
	def(&c.Log.Retention, DefaultRetention)
	def(&c.Log.DedupWindow, DefaultDedupWindow)
	def(&c.Log.DedupGuard, DefaultDedupGuard)
	if c.Quarantine.MaxBytes == 0 {
		c.Quarantine.MaxBytes = DefaultQuarantineMaxBytes
	}
	def(&c.Quarantine.MaxAge, DefaultQuarantineMaxAge)
	if c.Log.LookupBudget == 0 {
		c.Log.LookupBudget = DefaultLookupBudget
	}
	def(&c.Subscribe.Heartbeat, DefaultHeartbeat)
	def(&c.Subscribe.StallTimeout, DefaultStallTimeout)
	if c.Subscribe.MaxStreams == 0 {
		c.Subscribe.MaxStreams = DefaultMaxStreams
	}
	if c.Subscribe.MaxStreamsPerToken == 0 {
		c.Subscribe.MaxStreamsPerToken = DefaultMaxStreamsPerToken
	}
	if c.Subscribe.StreamBuffer == 0 {
		c.Subscribe.StreamBuffer = DefaultStreamBuffer
	}
	if c.Subscribe.BufferBudget == 0 {
		c.Subscribe.BufferBudget = DefaultBufferBudget
	}
	if c.Log.ReadBudget == 0 {
		c.Log.ReadBudget = DefaultReadBudget
	}
	if c.API.UnknownSource == "" {
		c.API.UnknownSource = "not_found"
	}
	for i := range c.Sources {
		if s := &c.Sources[i]; s.RateLimit > 0 && s.Burst == 0 {
			s.Burst = max(1, int(s.RateLimit))
		}
	}
	def(&c.ShutdownTimeout, DefaultShutdownTimeout)
	d := &c.Delivery
	def(&d.Timeout, DefaultDeliveryTimeout)
	if d.RetrySchedule == nil {
		d.RetrySchedule = slices.Clone(DefaultRetrySchedule)
	}
	if d.Jitter == nil {
		j := DefaultDeliveryJitter
		d.Jitter = &j
	}
	def(&d.DisableAfter, DefaultDisableAfter)
	if d.MaxInFlight == 0 {
		d.MaxInFlight = DefaultDeliveryMaxInFlight
	}
	if d.MaxPending == 0 {
		d.MaxPending = DefaultDeliveryMaxPending
	}
	def(&d.SecretOverlap, DefaultSecretOverlap)
	if d.MaxEndpoints == 0 {
		d.MaxEndpoints = DefaultMaxEndpoints
	}
	def(&d.AttemptsRetention, DefaultAttemptsRetention)
	def(&d.DeadLetterRetention, DefaultDeadLetterRetention)
	c.Telemetry.setDefaults()
}

// validateConnection checks how the log reaches NATS: one way to
// authenticate, complete credentials, a client certificate with its key,
// and settings that only an external cluster can honour.
func (l Log) validateConnection() []error {
	var errs []error
	var ways []string
	if l.CredsFile != "" {
		ways = append(ways, "creds_file")
	}
	if l.User != "" || l.Password != "" {
		ways = append(ways, "user/password")
	}
	if l.Token != "" {
		ways = append(ways, "token")
	}
	if l.NkeyFile != "" {
		ways = append(ways, "nkey_file")
	}
	if len(ways) > 1 {
		errs = append(errs, fmt.Errorf("log: set one way to authenticate to NATS, not %s", strings.Join(ways, " and ")))
	}
	if (l.User == "") != (l.Password == "") {
		errs = append(errs, errors.New("log: set both user and password"))
	}
	if (l.TLS.Cert == "") != (l.TLS.Key == "") {
		errs = append(errs, errors.New("log.tls: set both cert and key"))
	}
	if l.URL == "" {
		if len(ways) > 0 || l.TLS.CA != "" || l.TLS.Cert != "" {
			errs = append(errs, errors.New("log: credentials and tls are for an external NATS server; set log.url, or remove them to run embedded"))
		}
		if l.Replicas > 1 {
			errs = append(errs, fmt.Errorf("log.replicas %d needs an external cluster (log.url); the embedded server keeps one copy", l.Replicas))
		}
	}
	return errs
}

// checkListenAddr says what is wrong with a listener's host:port.
func checkListenAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("must be host:port (the host may be empty for every interface)")
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return errors.New("the port must be a number from 0 to 65535")
	}
	return nil
}

func (c *Config) validate(vendors []Vendor) error {
	var errs []error
	if c.Log.Fsync != "interval" && c.Log.Fsync != "always" {
		errs = append(errs, fmt.Errorf("log.fsync must be interval or always, not %q", c.Log.Fsync))
	}
	if g := c.Log.GroupCommit; g != "auto" && g != "on" && g != "off" {
		errs = append(errs, fmt.Errorf("log.group_commit must be auto, on or off, not %q", g))
	}
	// Durations that a 0 gives their default: a negative one would be read
	// as none (no timeout at all) or replaced silently.
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"shutdown_timeout", c.ShutdownTimeout}, {"http.read_header_timeout", c.HTTP.ReadHeaderTimeout},
		{"http.read_timeout", c.HTTP.ReadTimeout}, {"http.idle_timeout", c.HTTP.IdleTimeout},
		{"log.retention", c.Log.Retention}, {"log.fsync_interval", c.Log.FsyncInterval}, {"log.connect_timeout", c.Log.ConnectTimeout},
		{"subscribe.heartbeat", c.Subscribe.Heartbeat}, {"subscribe.stall_timeout", c.Subscribe.StallTimeout},
	} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s %s must be positive", d.key, d.v))
		}
	}
	for _, a := range []struct{ key, addr string }{{"http.addr", c.HTTP.Addr}, {"grpc.addr", c.GRPC.Addr}} {
		if err := checkListenAddr(a.addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", a.key, a.addr, err))
		}
	}
	if c.Log.MinFreeDisk < 16<<20 {
		errs = append(errs, fmt.Errorf("log.min_free_disk %d must be at least 16MiB (room for the writes under way when ingest stops)", c.Log.MinFreeDisk))
	}
	if c.Log.URL == "" && int64(c.HTTP.BodyLimit)+64<<10 > int64(c.Log.MaxMessageSize) {
		errs = append(errs, fmt.Errorf("http.body_limit %d must be at least 64KiB below log.max_message_size %d", c.HTTP.BodyLimit, c.Log.MaxMessageSize))
	}
	if c.Quarantine.MaxBytes < c.HTTP.BodyLimit+64<<10 {
		errs = append(errs, fmt.Errorf("quarantine.max_bytes %d must be at least http.body_limit + 64KiB (%d), or no full-size request fits",
			c.Quarantine.MaxBytes, c.HTTP.BodyLimit+64<<10))
	}
	if c.Quarantine.MaxAge < time.Hour {
		errs = append(errs, fmt.Errorf("quarantine.max_age %s must be at least 1h", c.Quarantine.MaxAge))
	}
	if c.Log.LookupBudget < MinLookupBudget || c.Log.LookupBudget > MaxLookupBudget {
		errs = append(errs, fmt.Errorf("log.lookup_budget must be between %d and %d, not %d", MinLookupBudget, MaxLookupBudget, c.Log.LookupBudget))
	}
	if sub := c.Subscribe; sub.MaxStreams < 0 || sub.MaxStreamsPerToken < 0 {
		errs = append(errs, errors.New("subscribe.max_streams and subscribe.max_streams_per_token must not be negative"))
	}
	if sub := c.Subscribe; sub.StreamBuffer < 16<<10 || sub.BufferBudget < sub.StreamBuffer {
		errs = append(errs, fmt.Errorf("subscribe.stream_buffer %d must be at least 16KiB and no more than subscribe.buffer_budget %d",
			sub.StreamBuffer, sub.BufferBudget))
	}
	if c.Log.ReadBudget < c.Subscribe.StreamBuffer {
		errs = append(errs, fmt.Errorf("log.read_budget %d must be at least subscribe.stream_buffer %d", c.Log.ReadBudget, c.Subscribe.StreamBuffer))
	}
	errs = append(errs, c.Log.validateConnection()...)
	// What the event log would refuse at start, said here too.
	if c.Log.DedupWindow < MinDedupWindow {
		errs = append(errs, fmt.Errorf("log.dedup_window %s must be at least %s (vendors retry for minutes, and redeliveries come later)",
			c.Log.DedupWindow, MinDedupWindow))
	}
	if c.Log.DedupWindow > c.Log.Retention {
		errs = append(errs, fmt.Errorf("log.dedup_window %s must not be longer than log.retention %s", c.Log.DedupWindow, c.Log.Retention))
	}
	if c.Log.DedupGuard < 100*time.Millisecond || c.Log.DedupGuard > c.Log.DedupWindow {
		errs = append(errs, fmt.Errorf("log.dedup_guard %s must be between 100ms and log.dedup_window %s", c.Log.DedupGuard, c.Log.DedupWindow))
	}
	// With log.keep_raw an event holds the body twice (serve checks the
	// same against an external server's own maximum, which only it knows;
	// the default body limit is lowered to fit instead).
	if keepRaw := c.Log.KeepRaw == nil || *c.Log.KeepRaw; c.Log.URL == "" && keepRaw && c.HTTP.BodyLimit != DefaultBodyLimit &&
		2*int64(c.HTTP.BodyLimit)+64<<10 > int64(c.Log.MaxMessageSize) {
		errs = append(errs, fmt.Errorf("http.body_limit %d does not fit log.max_message_size %d twice, as log.keep_raw needs "+
			"(body_limit*2 + 64KiB); set it to %d or less, raise log.max_message_size, or set log.keep_raw: false",
			c.HTTP.BodyLimit, c.Log.MaxMessageSize, (int64(c.Log.MaxMessageSize)-64<<10)/2))
	}
	if c.HTTP.Addr == c.GRPC.Addr && !strings.HasSuffix(c.HTTP.Addr, ":0") { // port 0: each its own free port
		errs = append(errs, fmt.Errorf("http.addr and grpc.addr are both %s; the two listeners need their own", c.HTTP.Addr))
	}
	errs = append(errs, c.Delivery.validate()...)
	errs = append(errs, c.Telemetry.validate()...)
	if c.API.UnknownSource != "not_found" && c.API.UnknownSource != "unauthorized" {
		errs = append(errs, fmt.Errorf("api.unknown_source must be not_found or unauthorized, not %q", c.API.UnknownSource))
	}
	names := map[string]bool{}
	for i, t := range c.API.Tokens {
		where := fmt.Sprintf("api.tokens[%d] (%s)", i, t.Name)
		if t.Name == "" || names[t.Name] {
			errs = append(errs, fmt.Errorf("%s: every token needs a unique name", where))
		}
		names[t.Name] = true
		if t.Scope != "read" && t.Scope != "admin" {
			errs = append(errs, fmt.Errorf("%s: scope must be read or admin, not %q", where, t.Scope))
		}
		switch {
		case (t.Token == "") == (t.SHA256 == ""):
			errs = append(errs, fmt.Errorf("%s: set exactly one of token and sha256", where))
		case t.Token != "" && len(t.Token) < 16:
			errs = append(errs, fmt.Errorf("%s: token must be at least 16 characters", where))
		case t.SHA256 != "" && !sha256Hex.MatchString(t.SHA256):
			errs = append(errs, fmt.Errorf("%s: sha256 must be 64 hex digits", where))
		}
	}
	for _, tl := range []struct {
		name string
		t    TLS
	}{{"http.tls", c.HTTP.TLS}, {"grpc.tls", c.GRPC.TLS}} {
		if (tl.t.Cert == "") != (tl.t.Key == "") {
			errs = append(errs, fmt.Errorf("%s: set both cert and key", tl.name))
		}
		if tl.t.ClientCA != "" && tl.t.Cert == "" {
			errs = append(errs, fmt.Errorf("%s: client_ca needs cert and key too", tl.name))
		}
	}
	errs = append(errs, validateOrigins(c.HTTP.CORS.AllowedOrigins)...)
	if c.HTTP.TLS.ClientCA != "" {
		errs = append(errs, errors.New("http.tls.client_ca is not supported: vendors do not send client certificates"))
	}
	if len(c.Sources) == 0 {
		errs = append(errs, errors.New("no sources configured: add at least one under sources"))
	}
	seen := map[string]bool{}
	for i, s := range c.Sources {
		where := fmt.Sprintf("sources[%d] (%s)", i, s.Name)
		if !sourceName.MatchString(s.Name) {
			errs = append(errs, fmt.Errorf("%s: name must be 1-64 of a-z 0-9 _ - and start with a letter or digit", where))
		}
		if seen[s.Name] {
			errs = append(errs, fmt.Errorf("%s: duplicate source name", where))
		}
		seen[s.Name] = true
		if s.RateLimit < 0 || s.Burst < 0 {
			errs = append(errs, fmt.Errorf("%s: rate_limit and burst must not be negative", where))
		}
		vendor, known := findVendor(vendors, s.Vendor)
		if !known {
			var names []string
			for _, v := range vendors {
				names = append(names, v.Name)
			}
			errs = append(errs, fmt.Errorf("%s: vendor must be one of %s, not %q", where, strings.Join(names, ", "), s.Vendor))
		}
		switch scheme := s.Auth.Scheme(); scheme {
		case "":
			errs = append(errs, fmt.Errorf("%s: no auth configured; set its secret, or `auth: none` to accept unauthenticated webhooks", where))
		case "none":
		case "token", "handshake_key", "basic":
			if scheme == "basic" && (s.Auth.Basic.Username == "" || s.Auth.Basic.Password == "") {
				errs = append(errs, fmt.Errorf("%s: basic auth needs username and password", where))
			}
			if scheme == "token" && len(s.Auth.Token) < MinTokenLength {
				errs = append(errs, fmt.Errorf("%s: auth.token must be at least %d characters", where, MinTokenLength))
			}
			if known && !slices.Contains(vendor.Auth, scheme) {
				errs = append(errs, fmt.Errorf("%s: %s cannot send auth %s; use one of %s (or `auth: none`)",
					where, vendor.Name, scheme, strings.Join(vendor.Auth, ", ")))
			}
		default:
			errs = append(errs, fmt.Errorf("%s: auth sets %s; set exactly one", where, scheme))
		}
	}
	return errors.Join(errs...)
}

func findVendor(vendors []Vendor, name string) (Vendor, bool) {
	for _, v := range vendors {
		if v.Name == name {
			return v, true
		}
	}
	return Vendor{}, false
}

// validateOrigins checks http.cors.allowed_origins: "*" alone, or origins
// written as browsers send them (scheme://host[:port], nothing after).
func validateOrigins(origins []string) []error {
	var errs []error
	for i, o := range origins {
		where := fmt.Sprintf("http.cors.allowed_origins[%d]", i)
		if o == "*" {
			if len(origins) > 1 {
				errs = append(errs, fmt.Errorf("%s: \"*\" allows every origin; list it alone", where))
			}
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Scheme+"://"+u.Host != o {
			errs = append(errs, fmt.Errorf("%s: %q is not an origin: write scheme://host[:port], e.g. https://app.example.com", where, o))
		}
	}
	return errs
}
