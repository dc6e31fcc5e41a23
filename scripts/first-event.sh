#!/usr/bin/env bash
# Measures what a new user meets: from a fresh clone to the first event seen
# in `hookstream tail`. Clones REPO (default: this checkout) into a temporary
# directory, builds the binary, starts `serve` with no config, sends one
# example webhook and waits for `tail` to print it. Prints the time of each
# step. Uses the Go module and build caches as they are on this machine: run
# `go clean -cache -modcache` first to measure a machine that has never built
# it (the module download then dominates).
#
# Usage: scripts/first-event.sh [REPO]
set -euo pipefail
repo=${1:-$(cd "$(dirname "$0")/.." && pwd)}
work=$(mktemp -d)
serve_pid=""
cleanup() {
  [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
t0=$(date +%s.%N)
lap() { printf '%-50s %6.1f s\n' "$1" "$(echo "$(date +%s.%N) - $t0" | bc)"; }

git clone -q "$repo" "$work/hookstream"
cd "$work/hookstream"
lap "git clone"
go build -o "$work/hookstream-bin" ./cmd/hookstream
lap "go build ./cmd/hookstream"
hs="$work/hookstream-bin"
# The defaults a new user gets: 127.0.0.1:8080 (HTTP) and :9090 (gRPC).
for p in 8080 9090; do
  if (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then
    echo "port $p is in use: stop what listens there first" >&2
    exit 1
  fi
done
"$hs" serve >"$work/serve.log" 2>&1 &
serve_pid=$!
until grep -q "hookstream send" "$work/serve.log" 2>/dev/null; do
  kill -0 "$serve_pid" 2>/dev/null || { cat "$work/serve.log"; exit 1; }
  sleep 0.05
done
lap "hookstream serve: banner printed"
"$hs" send --example pipedrive.deal.change >/dev/null
lap "hookstream send --example pipedrive.deal.change"
read -r first < <(timeout 30 "$hs" tail --from beginning --text)
lap "hookstream tail: first event line"
kill $! 2>/dev/null || true
echo "    $first"
