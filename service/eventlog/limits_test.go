package eventlog

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/hookstream/hookstream/internal/natstest"
)

// openErr opens a log that is expected to fail, and returns the error.
func openErr(t *testing.T, cfg Config) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := Open(ctx, cfg, quiet())
	if err == nil {
		l.Close()
		t.Fatalf("Open(%+v) succeeded; want an error", cfg)
	}
	return err
}

// TestExternalConflictsAreRefused: a replica whose config would lower
// what the shared streams keep (retention, the quarantine's age, copies)
// is refused at once with an error that names the change; raising is
// applied; an events stream of another application is never taken over.
// On the embedded server, the only config lowers them.
func TestExternalConflictsAreRefused(t *testing.T) {
	t.Parallel()
	ns := natsServer(t)
	base := Config{URL: ns.ClientURL(), Retention: 168 * time.Hour, QuarantineMaxAge: 720 * time.Hour}
	open := func(c Config) { // a replica that starts and stops
		c.DataDir = t.TempDir()
		openLog(t, c).Close()
	}
	open(base)

	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"shorter retention", func(c *Config) { c.Retention = 3 * time.Hour }, "max age 168h0m0s → 3h0m0s"},
		{"shorter quarantine", func(c *Config) { c.QuarantineMaxAge = time.Hour }, "KV_hookstream_quarantine: this replica's config would lower max age 720h0m0s → 1h0m0s"},
		{"smaller quarantine", func(c *Config) { c.QuarantineMaxBytes = 1 << 20 }, "→ 1048576"},
	} {
		c := base
		tc.edit(&c)
		c.DataDir = t.TempDir()
		start := time.Now()
		err := openErr(t, c)
		if !errors.Is(err, ErrStreamConflict) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "nats stream edit") {
			t.Errorf("%s: %v; want ErrStreamConflict saying %q and how to lower on purpose", tc.name, err, tc.want)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("%s: refused after %s; want at once, not retried", tc.name, d)
		}
	}
	// Raising is applied.
	raised := base
	raised.Retention = 200 * time.Hour
	open(raised)
	js := jetStreamOf(t, ns.ClientURL())
	ctx := context.Background()
	st, err := js.Stream(ctx, defaultStream)
	if err != nil || st.CachedInfo().Config.MaxAge != raised.Retention {
		t.Fatalf("after a replica raised the retention: %v, max age %v", err, st.CachedInfo().Config.MaxAge)
	}

	// Another application's stream of the name is not taken over.
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "LEGACY", Subjects: []string{"legacy.>"}}); err != nil {
		t.Fatal(err)
	}
	foreign := base
	foreign.Stream, foreign.DataDir = "LEGACY", t.TempDir()
	if err := openErr(t, foreign); !errors.Is(err, ErrStreamConflict) || !strings.Contains(err.Error(), "[legacy.>]") {
		t.Errorf("a stream of other subjects: %v", err)
	}
	if st, _ := js.Stream(ctx, "LEGACY"); st.CachedInfo().Config.Subjects[0] != "legacy.>" {
		t.Errorf("the other application's stream was changed: %v", st.CachedInfo().Config.Subjects)
	}

	// Embedded: the config is the only one, and its lowering applies.
	dir := t.TempDir()
	emb := Config{DataDir: dir, Retention: 168 * time.Hour}
	openLog(t, emb).Close()
	emb.Retention = 3 * time.Hour
	l := openLog(t, emb)
	if got := l.stream.CachedInfo().Config.MaxAge; got != 3*time.Hour {
		t.Errorf("embedded, retention lowered to 3h: the stream keeps %v", got)
	}
}

// TestExternalConnectErrorsNameTheCause: a NATS server that refuses the
// credentials, or has no JetStream, is reported as such, not as one that
// cannot be reached; the password is never in the error.
func TestExternalConnectErrorsNameTheCause(t *testing.T) {
	t.Parallel()
	auth := natstest.Start(t, server.Options{Username: "hs", Password: "right-password"})
	err := openErr(t, Config{URL: auth.ClientURL(), User: "hs", Password: "wrong-password", ConnectTimeout: time.Second, DataDir: t.TempDir()})
	if !strings.Contains(err.Error(), "Authorization Violation") || strings.Contains(err.Error(), "wrong-password") {
		t.Errorf("wrong password: %v; want the server's authorization error, without the password", err)
	}

	single := natsServer(t)
	err = openErr(t, Config{URL: single.ClientURL(), Replicas: 3, ConnectTimeout: 2 * time.Second, DataDir: t.TempDir()})
	if !strings.Contains(err.Error(), "log.replicas 3 needs as many JetStream servers") {
		t.Errorf("3 replicas on a single server: %v; want a hint at log.replicas", err)
	}

	plain, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	plain.Start()
	t.Cleanup(plain.Shutdown)
	if !plain.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server did not start")
	}
	err = openErr(t, Config{URL: plain.ClientURL(), ConnectTimeout: 2 * time.Second, DataDir: t.TempDir()})
	if !strings.Contains(err.Error(), "is JetStream enabled") {
		t.Errorf("no JetStream: %v; want a hint that JetStream is off", err)
	}
}

// TestExternalNkey: log.nkey_file authenticates with a user's nkey seed.
func TestExternalNkey(t *testing.T) {
	t.Parallel()
	user, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := user.PublicKey()
	seed, _ := user.Seed()
	file := filepath.Join(t.TempDir(), "user.nk")
	if err := os.WriteFile(file, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	ns := natstest.Start(t, server.Options{Nkeys: []*server.NkeyUser{{Nkey: pub}}})
	l := openLog(t, Config{URL: ns.ClientURL(), NkeyFile: file, DataDir: t.TempDir()})
	mustAppend(t, l, event(1))

	other, _ := nkeys.CreateUser()
	otherSeed, _ := other.Seed()
	if err := os.WriteFile(file, otherSeed, 0o600); err != nil {
		t.Fatal(err)
	}
	err = openErr(t, Config{URL: ns.ClientURL(), NkeyFile: file, ConnectTimeout: time.Second, DataDir: t.TempDir()})
	if !strings.Contains(err.Error(), "Authorization Violation") {
		t.Errorf("an unknown nkey: %v", err)
	}
}

// TestReadyFollowsQuorum: on a 3-node cluster that loses two nodes, the
// connection stays up but the stream takes no writes; Ready (health)
// says so once a write failed, and says ready again once the quorum is
// back and writes are taken.
func TestReadyFollowsQuorum(t *testing.T) {
	t.Parallel()
	nodes, opts, url := natsClusterServers(t)
	// The default dedup guard: the index is never "behind" here, so only
	// the write's failure can make the log not ready.
	l := openLog(t, Config{URL: url, Replicas: 3, DataDir: t.TempDir(), WriteTimeout: 2 * time.Second, GuardWindow: time.Minute})
	ctx := context.Background()
	mustAppend(t, l, event(1))
	if !l.Ready() {
		t.Fatal("not ready on a whole cluster")
	}
	for _, n := range nodes[1:] {
		n.Shutdown()
		n.WaitForShutdown()
	}
	if _, err := l.Append(ctx, event(2)); err == nil {
		t.Fatal("a write was taken by one node of three")
	}
	deadline := time.Now().Add(10 * time.Second)
	for !l.nc.IsConnected() { // to the node left
		if time.Now().After(deadline) {
			t.Fatal("not connected to the node left")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := l.index.current(); err != nil {
		t.Fatalf("the index says %v; the test wants only the failed write to count", err)
	}
	if l.Ready() {
		t.Fatal("ready while connected to a stream that has no quorum, after a write failed")
	}
	natstest.Start(t, opts[1]) // two of three again
	deadline = time.Now().Add(60 * time.Second)
	for i := 3; ; i++ { // a new event each time: a retry may be a duplicate of one that was stored
		if app, err := l.Append(ctx, event(i)); err == nil && !app.Duplicate {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("writes not taken again after the quorum came back")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !l.Ready() {
		_, ierr := l.index.current()
		t.Errorf("not ready after writes were taken again (connected %v, index %v, failed %d ns after the last success)",
			l.nc.IsConnected(), ierr, l.writes.failed.Load()-l.writes.ok.Load())
	}
}

// TestReadOnlyDataDir: a data dir the embedded server cannot write is
// named at once, not after the start's timeout.
func TestReadOnlyDataDir(t *testing.T) {
	t.Parallel()
	// A directory no one may create files in, root included (tests run as
	// root in CI, which writes to a mode 0500 directory).
	dir := "/proc/self/fd"
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("%s: %v", dir, err)
	}
	start := time.Now()
	err := openErr(t, Config{DataDir: dir})
	if !strings.Contains(err.Error(), "is not writable") || time.Since(start) > 5*time.Second {
		t.Errorf("a read-only data dir: %v after %s; want it named at once", err, time.Since(start))
	}
}
