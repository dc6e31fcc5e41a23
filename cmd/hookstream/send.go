package main

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/hookstream/hookstream/internal/config"
)

//go:embed examples/*.json
var examplesFS embed.FS

const sendHelp = `Usage: hookstream send --source S (FILE | --example NAME)

Posts a webhook body to POST /v1/webhooks/S on the HTTP port, with the
credentials of source S taken from the config (the generated one in
--data-dir, or --config): Basic auth for a basic source, the
X-Hookstream-Token header for a token source, and the handshake_key member
of the JSON body for a handshake_key source. Prints the response status and
body.

An --example is made unique on every send, so the gateway does not treat a
repeat as a vendor retry: Closer gets the current time as "timestamp",
Pipedrive a fresh meta.id and meta.timestamp, ClinchPad a fresh
activity._id and activity.created_at. A FILE is sent as it is (apart from
the handshake key). --source defaults to the example's vendor.

Examples:
%s
  hookstream send --source pipedrive-eu --example pipedrive.deal.change
  hookstream send --source closer payload.json

Exit codes: 0 the gateway answered 2xx, 1 failure or another status, 2 usage error.

Flags:
`

func exampleNames() []string {
	entries, _ := examplesFS.ReadDir("examples")
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".json"))
	}
	slices.Sort(names)
	return names
}

func send(args []string, stdout, stderr io.Writer) error {
	var cf clientFlags
	var source, example, httpAddr string
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cf.dataDir, "data-dir", defaultDataDir, "data directory whose "+config.GeneratedFile+" holds the source credentials")
	fs.StringVar(&cf.config, "config", "", "config file holding the source credentials (instead of the generated one)")
	fs.StringVar(&source, "source", "", "source to post to (default: the vendor of --example)")
	fs.StringVar(&example, "example", "", "send a built-in example: "+strings.Join(exampleNames(), ", "))
	fs.StringVar(&httpAddr, "http", "", "HTTP address of the server (env HOOKSTREAM_HTTP; default http.addr of the config, else "+defaultHTTPAddr+")")
	cf.tls.register(fs, "http")
	fs.Usage = func() {
		fmt.Fprintf(stderr, sendHelp, "  hookstream send --example "+strings.Join(exampleNames(), "\n  hookstream send --example "))
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var body []byte
	var err error
	switch {
	case example != "" && fs.NArg() == 0:
		if body, err = examplesFS.ReadFile(path.Join("examples", example+".json")); err != nil {
			return usagef("no example %q; there are %s", example, strings.Join(exampleNames(), ", "))
		}
		source = cmp.Or(source, strings.SplitN(example, ".", 2)[0])
	case example == "" && fs.NArg() == 1:
		if body, err = os.ReadFile(fs.Arg(0)); err != nil {
			return err
		}
	default:
		return usagef("send takes one FILE or --example NAME")
	}
	if source == "" {
		return usagef("--source is required with a FILE")
	}
	cfg, err := cf.localConfig()
	if err != nil {
		return err
	}
	if cfg == nil {
		return fmt.Errorf("no config with the source credentials: pass --config, or --data-dir of a server started without --config")
	}
	i := slices.IndexFunc(cfg.Sources, func(s config.Source) bool { return s.Name == source })
	if i < 0 {
		return fmt.Errorf("no source %q in the config", source)
	}
	src := cfg.Sources[i]
	if example != "" {
		if vendor := strings.SplitN(example, ".", 2)[0]; vendor != src.Vendor {
			// It would only be quarantined as not the source's format.
			return usagef("--example %s is a %s webhook, and source %s is a %s source; pick a %s example or another --source",
				example, vendor, source, src.Vendor, src.Vendor)
		}
		if body, err = freshen(src.Vendor, body); err != nil {
			return err
		}
	}
	if src.Auth.HandshakeKey != "" {
		if body, err = setMember(body, "handshake_key", src.Auth.HandshakeKey); err != nil {
			what := "the example"
			if example == "" {
				what = fs.Arg(0)
			}
			return fmt.Errorf("source %s authenticates with a handshake_key member of a JSON object body, and %s is not one: %w", source, what, err)
		}
	}
	tc, err := cf.tls.config(cfg.HTTP.TLS)
	if err != nil {
		return err
	}
	addr := cmp.Or(httpAddr, os.Getenv("HOOKSTREAM_HTTP"), dialable(cfg.HTTP.Addr), defaultHTTPAddr)
	base := addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
		if tc != nil {
			base = "https://" + addr
		}
	}
	req, err := http.NewRequest(http.MethodPost, strings.TrimSuffix(base, "/")+"/v1/webhooks/"+url.PathEscape(source), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if b := src.Auth.Basic; b != nil {
		req.SetBasicAuth(b.Username, b.Password)
	}
	if src.Auth.Token != "" {
		req.Header.Set("X-Hookstream-Token", src.Auth.Token)
	}
	client := &http.Client{Timeout: 30 * time.Second}
	if tc != nil {
		client.Transport = &http.Transport{TLSClientConfig: tc, Proxy: http.ProxyFromEnvironment}
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	fmt.Fprintf(stdout, "%s\n%s\n", resp.Status, bytes.TrimSpace(out))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("the gateway answered %s", resp.Status)
	}
	return nil
}

// freshen gives an example body the fields that make an event unique, so a
// repeated send is a new event rather than a deduplicated retry.
func freshen(vendor string, body []byte) ([]byte, error) {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	obj := func(k string) map[string]any { o, _ := m[k].(map[string]any); return o }
	switch vendor {
	case "closer":
		m["timestamp"] = now.UnixMilli()
	case "pipedrive":
		if meta := obj("meta"); meta != nil {
			meta["id"] = randomUUID()
			meta["timestamp"] = now.Format("2006-01-02T15:04:05.000Z")
		}
	case "clinchpad":
		if act := obj("activity"); act != nil {
			act["_id"] = randomHex(12)
			act["created_at"] = now.Format(time.RFC3339)
		}
	}
	return json.MarshalIndent(m, "", "  ")
}

// setMember sets a top-level member of a JSON object body to a string,
// leaving the rest of the body as it was, byte for byte (order, spacing,
// numbers, escapes): every member named key gets the value, and without
// one it is put first.
func setMember(body []byte, key, value string) ([]byte, error) {
	if !json.Valid(body) {
		return nil, errors.New("not valid JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	open := dec.InputOffset() // just past the '{'
	enc, err := json.Marshal(value)
	if err != nil {
		return nil, err
	}
	type span struct{ from, to int64 }
	var values []span
	members := 0
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		members++
		if k == key {
			end := dec.InputOffset()
			values = append(values, span{end - int64(len(raw)), end})
		}
	}
	if len(values) == 0 {
		name, err := json.Marshal(key)
		if err != nil {
			return nil, err
		}
		member := slices.Concat(name, []byte{':'}, enc)
		if members > 0 {
			member = append(member, ',')
		}
		return slices.Concat(body[:open], member, body[open:]), nil
	}
	var out []byte
	at := int64(0)
	for _, v := range values {
		out = append(append(out, body[at:v.from]...), enc...)
		at = v.to
	}
	return append(out, body[at:]...), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func randomUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
