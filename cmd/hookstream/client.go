package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/hookstream/hookstream/internal/config"
	"github.com/hookstream/hookstream/internal/tlsconf"
	"github.com/hookstream/hookstream/internal/vendors"
)

const (
	defaultGRPCAddr = "127.0.0.1:9090"
	defaultHTTPAddr = "127.0.0.1:8080"
	defaultDataDir  = "./data"
)

// clientFlags are the flags every command that talks to a server shares.
type clientFlags struct {
	addr    string
	token   string
	dataDir string
	config  string
	tls     tlsFlags
}

// tlsFlags choose how the CLI reaches a server that serves TLS.
type tlsFlags struct {
	on        bool   // --tls
	ca        string // --ca: PEM CAs to trust instead of the system's
	cert, key string // --cert/--key: a client certificate (servers with client_ca)
}

// register adds the flags; section is the config section of the server's
// TLS (grpc or http).
func (t *tlsFlags) register(fs *flag.FlagSet, section string) {
	fs.BoolVar(&t.on, "tls", false, "connect over TLS (env HOOKSTREAM_TLS=1; implied by --ca, --cert,\nand by a config whose "+section+".tls.cert is set)")
	fs.StringVar(&t.ca, "ca", "", "PEM file of the CAs to trust (env HOOKSTREAM_CA; default the system's, or the\nconfig's own certificate when it serves TLS, so a self-signed one works)")
	fs.StringVar(&t.cert, "cert", "", "PEM client certificate, for a server with tls.client_ca (with --key)")
	fs.StringVar(&t.key, "key", "", "PEM key of --cert")
}

// config returns the client TLS config, or nil for plaintext. served is the
// server's own tls section when its config is at hand (zero otherwise).
func (t *tlsFlags) config(served config.TLS) (*tls.Config, error) {
	ca := cmp.Or(t.ca, os.Getenv("HOOKSTREAM_CA"))
	env, _ := strconv.ParseBool(os.Getenv("HOOKSTREAM_TLS"))
	if !t.on && !env && ca == "" && t.cert == "" && !served.Enabled() {
		return nil, nil
	}
	if ca == "" && served.Enabled() {
		ca = served.Cert
	}
	if (t.cert == "") != (t.key == "") {
		return nil, usagef("--cert and --key go together")
	}
	return tlsconf.Client(ca, t.cert, t.key)
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.addr, "addr", "", "gRPC address of the server (env HOOKSTREAM_ADDR; default "+defaultGRPCAddr+",\nor grpc.addr of the generated config)")
	fs.StringVar(&c.token, "token", "", "API token (env HOOKSTREAM_TOKEN; default: a token of the generated config)")
	fs.StringVar(&c.dataDir, "data-dir", defaultDataDir, "data directory of a server started without --config, whose\n"+config.GeneratedFile+" supplies the address and token when not given")
	fs.StringVar(&c.config, "config", "", "read the address and token from this config file instead of the generated one")
	c.tls.register(fs, "grpc")
}

// localConfig returns the config beside the command: --config, else the
// generated one in --data-dir; nil (and no error) when there is none.
func (c *clientFlags) localConfig() (*config.Config, error) {
	path := c.config
	if path == "" {
		path = filepath.Join(c.dataDir, config.GeneratedFile)
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
	}
	return config.Load(path, vendors.Config())
}

// resolve fills in the address and token: flags, then environment, then the
// local config. scope is the least scope the command needs ("read" or
// "admin"); a config token of that scope is preferred, else an admin one.
// served is the config's grpc.tls, zero when no config was read.
func (c *clientFlags) resolve(scope string) (addr, token string, served config.TLS, err error) {
	addr = cmp.Or(c.addr, os.Getenv("HOOKSTREAM_ADDR"))
	token = cmp.Or(c.token, os.Getenv("HOOKSTREAM_TOKEN"))
	// An explicit --config is read even then: its TLS settings say how
	// to reach the server.
	if addr != "" && token != "" && c.config == "" {
		return withPort(addr), token, served, nil
	}
	cfg, err := c.localConfig()
	if err != nil {
		return "", "", served, err
	}
	if cfg != nil {
		addr = cmp.Or(addr, dialable(cfg.GRPC.Addr))
		if token == "" {
			token = configToken(cfg, scope)
		}
		served = cfg.GRPC.TLS
	}
	if token == "" {
		return "", "", served, fmt.Errorf("no API token: pass --token or set HOOKSTREAM_TOKEN (or run beside the data dir of a server started without --config)")
	}
	return withPort(cmp.Or(addr, defaultGRPCAddr)), token, served, nil
}

// withPort gives an address without a port the default gRPC port (gRPC
// would dial 443): "127.0.0.1" is 127.0.0.1:9090. A gRPC target with a
// scheme (dns:///host:port) is left as it is.
func withPort(addr string) string {
	if strings.Contains(addr, "://") {
		return addr
	}
	if _, _, err := net.SplitHostPort(addr); err != nil && strings.Contains(err.Error(), "missing port") {
		_, port, _ := net.SplitHostPort(defaultGRPCAddr)
		return net.JoinHostPort(strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]"), port)
	}
	return addr
}

// dialable turns a listen address into one to connect to: an empty or
// unspecified host (":9090", "0.0.0.0:9090") becomes loopback.
func dialable(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// configToken is a clear-text token of scope in cfg, else an admin one.
func configToken(cfg *config.Config, scope string) string {
	var admin string
	for _, t := range cfg.API.Tokens {
		if t.Token == "" {
			continue
		}
		if t.Scope == scope {
			return t.Token
		}
		if t.Scope == "admin" && admin == "" {
			admin = t.Token
		}
	}
	return admin
}

// dial opens a gRPC connection (TLS or plaintext, see tlsFlags) sending
// token on every call.
func (c *clientFlags) dial(scope string) (*grpc.ClientConn, error) {
	addr, token, served, err := c.resolve(scope)
	if err != nil {
		return nil, err
	}
	tc, err := c.tls.config(served)
	if err != nil {
		return nil, err
	}
	creds := insecure.NewCredentials()
	if tc != nil {
		creds = credentials.NewTLS(tc)
	}
	opts := append([]grpc.DialOption{grpc.WithTransportCredentials(creds), grpc.WithPerRPCCredentials(bearer(token))},
		hintInterceptors(tc != nil)...)
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", addr, err)
	}
	return conn, nil
}

// bearer sends an API token on every call. The server's default is
// plaintext gRPC on loopback, so the token is sent over plaintext too.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
