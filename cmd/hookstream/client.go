package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/hookstream/hookstream/internal/config"
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
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.addr, "addr", "", "gRPC address of the server (env HOOKSTREAM_ADDR; default "+defaultGRPCAddr+",\nor grpc.addr of the generated config)")
	fs.StringVar(&c.token, "token", "", "API token (env HOOKSTREAM_TOKEN; default: a token of the generated config)")
	fs.StringVar(&c.dataDir, "data-dir", defaultDataDir, "data directory of a server started without --config, whose\n"+config.GeneratedFile+" supplies the address and token when not given")
	fs.StringVar(&c.config, "config", "", "read the address and token from this config file instead of the generated one")
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
func (c *clientFlags) resolve(scope string) (addr, token string, err error) {
	addr = cmp.Or(c.addr, os.Getenv("HOOKSTREAM_ADDR"))
	token = cmp.Or(c.token, os.Getenv("HOOKSTREAM_TOKEN"))
	if addr != "" && token != "" {
		return addr, token, nil
	}
	cfg, err := c.localConfig()
	if err != nil {
		return "", "", err
	}
	if cfg != nil {
		addr = cmp.Or(addr, dialable(cfg.GRPC.Addr))
		if token == "" {
			token = configToken(cfg, scope)
		}
	}
	if token == "" {
		return "", "", fmt.Errorf("no API token: pass --token or set HOOKSTREAM_TOKEN (or run beside the data dir of a server started without --config)")
	}
	return cmp.Or(addr, defaultGRPCAddr), token, nil
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

// dial opens a plaintext gRPC connection sending token on every call.
func (c *clientFlags) dial(scope string) (*grpc.ClientConn, error) {
	addr, token, err := c.resolve(scope)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(bearer(token)))
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", addr, err)
	}
	return conn, nil
}

// bearer sends an API token on every call. The CLI talks plaintext gRPC
// (the server's default); it does not refuse to send the token over it.
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
