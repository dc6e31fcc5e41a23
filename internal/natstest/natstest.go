// Package natstest starts embedded NATS servers with JetStream for tests:
// on loopback, on a free port, in the test's temporary directory, and
// shut down when the test ends.
package natstest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// Start starts a JetStream server with opts, filling in what is unset:
// host 127.0.0.1, a random port, a store in t.TempDir(), no logging and
// no signal handlers. It fails the test if the server does not come up.
func Start(t testing.TB, opts server.Options) *server.Server {
	t.Helper()
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Port == 0 {
		opts.Port = -1
	}
	if opts.StoreDir == "" {
		opts.StoreDir = t.TempDir()
	}
	opts.JetStream, opts.NoLog, opts.NoSigs = true, true, true
	ns, err := server.NewServer(&opts)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server did not start")
	}
	return ns
}

// ReplaceStream deletes the stream name and creates it again with the
// same configuration, as an operator resetting it by hand would: its
// positions start over at 1 (its configuration's first position).
func ReplaceStream(t testing.TB, js jetstream.JetStream, name string) {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	if err := js.DeleteStream(ctx, name); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
}
