package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/hookstream/hookstream/internal/app"
	"github.com/hookstream/hookstream/internal/config"
	"github.com/hookstream/hookstream/internal/vendors"
)

type serveFlags struct {
	config    string
	dataDir   string
	logLevel  string
	logFormat string
}

func serve(args []string, stdout, stderr io.Writer) (err error) {
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
		fmt.Fprint(stderr, "\nExit codes: 0 stopped cleanly, 1 failure, 2 usage error.\n")
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("serve takes no arguments, got %q", strings.Join(fs.Args(), " "))
	}
	logger, err := newLogger(stderr, f.logLevel, f.logFormat)
	if err != nil {
		return err
	}
	if f.logFormat == "json" {
		// A collector that reads JSON lines gets the reason the process
		// ended as one too, not as a line of text after the last record.
		defer func() {
			if err != nil {
				logger.Error("serve failed", "err", err)
				err = loggedError{err}
			}
		}()
	}

	var cfg *config.Config
	created := false
	var pending, generated string // with a generated config: its setup marker and file
	if f.config != "" {
		if cfg, err = config.Load(f.config, vendors.Config()); err != nil {
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
		if cfg, path, created, err = config.LoadOrGenerate(dir, vendors.Config()); err != nil {
			return err
		}
		pending = filepath.Join(dir, setupPendingFile)
		if created {
			logger.Info("generated sources and secrets on first start", "file", path)
			// Until a start succeeds and shows them, the next start shows
			// them too (a first start can fail: a port in use).
			if err := os.WriteFile(pending, nil, 0o600); err != nil {
				return fmt.Errorf("data dir: %w", err)
			}
		} else {
			logger.Info("using sources generated on first start", "file", path)
		}
		generated = path
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	a, err := app.Start(ctx, cfg, logger, vendors.Registry)
	// The setup banner invites a `hookstream send` at once, so it comes once
	// the listeners are up: on the first start that succeeds.
	if err != nil {
		if pending != "" && fileExists(pending) {
			return fmt.Errorf("%w\nThe generated sources and API tokens are in %s (change http.addr and grpc.addr there for ports in use); "+
				"they are shown at the next start that succeeds", err, generated)
		}
		return err
	}
	if pending != "" && fileExists(pending) {
		printSetup(stdout, cfg)
		if err := os.Remove(pending); err != nil {
			logger.Warn("cannot remove the setup marker; the credentials will be shown again", "file", pending, "err", err)
		}
	}
	select {
	case <-ctx.Done():
		logger.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	case err = <-a.Errors():
		logger.Error("listener failed; shutting down", "err", err)
	}
	a.Shutdown(cfg.ShutdownTimeout)
	logger.Info("stopped")
	return err
}

// setupPendingFile, in the data dir, says the generated credentials have
// not been shown yet.
const setupPendingFile = ".setup-pending"

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		// Durations as "4s", as the config writes them, not nanoseconds.
		opts.ReplaceAttr = func(_ []string, a slog.Attr) slog.Attr {
			if a.Value.Kind() == slog.KindDuration {
				a.Value = slog.StringValue(a.Value.Duration().String())
			}
			return a
		}
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usagef("--log-format must be text or json, not %q", format)
}
