// Command hookstream receives vendor webhooks, normalizes them into
// canonical events, stores them in NATS JetStream and streams them to
// internal services.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/hookstream/hookstream/internal/config"
	"github.com/hookstream/hookstream/service/normalize"
)

const usage = `hookstream receives webhooks from Closer, Pipedrive and ClinchPad,
normalizes them into canonical events and streams them over gRPC.

Usage:
  hookstream serve [flags]    run the service
  hookstream help [command]   show help

Run 'hookstream serve --help' for the serve flags.
`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "hookstream:", err)
		}
		os.Exit(2)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		if len(args) > 1 && args[1] == "serve" {
			return serve([]string{"--help"}, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

type serveFlags struct {
	config    string
	dataDir   string
	logLevel  string
	logFormat string
}

func serve(args []string, stdout, stderr io.Writer) error {
	var f serveFlags
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.config, "config", "", "path of the YAML config file (see README, Configuration).\n"+
		"Without it, hookstream runs one source per vendor with secrets it generates\n"+
		"and keeps in <data-dir>/"+config.GeneratedFile+", and prints them on first start.")
	fs.StringVar(&f.dataDir, "data-dir", "", "data directory for the embedded event log and generated secrets\n(default ./data, or log.data_dir from the config)")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: hookstream serve [flags]\n\nRuns the webhook receiver, the gRPC API and the HTTP API until SIGINT or SIGTERM.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve takes no arguments, got %q", strings.Join(fs.Args(), " "))
	}
	logger, err := newLogger(stderr, f.logLevel, f.logFormat)
	if err != nil {
		return err
	}

	var cfg *config.Config
	if f.config != "" {
		if cfg, err = config.Load(f.config, configVendors(vendors)); err != nil {
			return err
		}
		if f.dataDir != "" {
			cfg.Log.DataDir = f.dataDir
		}
	} else {
		dir := f.dataDir
		if dir == "" {
			dir = "./data"
		}
		var path string
		var created bool
		if cfg, path, created, err = config.LoadOrGenerate(dir, configVendors(vendors)); err != nil {
			return err
		}
		if created {
			printSetup(stdout, cfg)
			logger.Info("generated sources and secrets on first start", "file", path)
		} else {
			logger.Info("using sources generated on first start", "file", path)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	a, err := start(ctx, cfg, logger)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		logger.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	case err = <-a.serveErr:
		logger.Error("listener failed; shutting down", "err", err)
	}
	a.shutdown(cfg.ShutdownTimeout)
	logger.Info("stopped")
	return err
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format must be text or json, not %q", format)
}

// printSetup tells a new user, once, what to enter at each vendor. It goes
// to stdout, not to the log, because it holds the generated secrets.
func printSetup(w io.Writer, cfg *config.Config) {
	base := cfg.HTTP.PublicURL
	if base == "" {
		base = "http://" + cfg.HTTP.Addr
	}
	base = strings.TrimSuffix(base, "/")
	fmt.Fprintf(w, "\nhookstream generated one source per vendor. Enter these at each vendor\n"+
		"(they are shown only now; they are kept in %s/%s):\n\n", cfg.Log.DataDir, config.GeneratedFile)
	for _, s := range cfg.Sources {
		v, ok := vendors.Lookup(s.Vendor)
		if !ok {
			continue
		}
		c := normalize.Credentials{Token: s.Auth.Token, HandshakeKey: s.Auth.HandshakeKey}
		if s.Auth.Basic != nil {
			c.Username, c.Password = s.Auth.Basic.Username, s.Auth.Basic.Password
		}
		fmt.Fprintf(w, "%s\n", v.Setup(base+"/v1/webhooks/"+s.Name, c))
	}
	for _, t := range cfg.API.Tokens {
		if t.Token != "" {
			fmt.Fprintf(w, "  API token %q (scope %s), for the event and quarantine APIs:\n    authorization: Bearer %s\n\n", t.Name, t.Scope, t.Token)
		}
	}
	fmt.Fprintf(w, "Vendors need HTTPS and a public address: put a TLS-terminating proxy in\n"+
		"front of %s and set http.public_url in a config file.\n\n", cfg.HTTP.Addr)
}
