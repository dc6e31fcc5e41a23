package system

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestTypeScriptClient runs test/clients/ts-client.test.mjs with node's
// test runner against a server on loopback: @hookstream/client over gRPC
// and Connect from Node and over fetch (its browser entry point), and
// examples/ts-subscriber subscribing with a CEL filter, storing its cursor
// and resuming from it. It uses what scripts/test.sh builds (npm run
// build:ts) and fails when that is missing or older than its sources.
func TestTypeScriptClient(t *testing.T) {
	t.Parallel()
	root, _ := filepath.Abs("../..")
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is not installed; CI installs it (scripts/apt-install.sh)")
	}
	built := []string{"clients/ts/dist/index.js", "clients/ts/dist/node.js", "examples/ts-subscriber/dist/main.js"}
	sources := []string{"gen/ts", "clients/ts/src", "examples/ts-subscriber/src"}
	if err := checkBuilt(root, built, sources); err != nil {
		t.Fatalf("%v: run npm ci && npm run build:ts (scripts/test.sh does)", err)
	}
	if _, err := os.Stat(filepath.Join(root, "node_modules/@hookstream/client")); err != nil {
		t.Fatal("node_modules/@hookstream/client is missing: run npm ci (it links the workspace)")
	}

	s := startServer(t, testConfig(t, t.TempDir(), ""))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", filepath.Join(root, "test/clients/ts-client.test.mjs"))
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		"HOOKSTREAM_GRPC_URL=http://"+s.app.GRPCAddr(),
		"HOOKSTREAM_HTTP_URL="+s.base,
		"HOOKSTREAM_READ_TOKEN="+readToken,
		"HOOKSTREAM_ADMIN_TOKEN="+adminToken,
		"HOOKSTREAM_PIPEDRIVE_BASIC=pipedrive:"+pdPassword,
		"HOOKSTREAM_CLOSER_TOKEN="+closerToken,
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test test/clients/ts-client.test.mjs: %v\n%s", err, out)
	}
	t.Logf("node --test:\n%s", out)
}

// checkBuilt fails when a built file is missing or older than a file under
// one of the source directories (all relative to root).
func checkBuilt(root string, built, sources []string) error {
	var oldest time.Time
	for _, b := range built {
		fi, err := os.Stat(filepath.Join(root, b))
		if err != nil {
			return err
		}
		if oldest.IsZero() || fi.ModTime().Before(oldest) {
			oldest = fi.ModTime()
		}
	}
	for _, dir := range sources {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			if fi.ModTime().After(oldest) {
				return &staleError{path}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

type staleError struct{ path string }

func (e *staleError) Error() string { return e.path + " is newer than the built TypeScript" }
