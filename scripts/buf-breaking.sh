#!/usr/bin/env bash
# Checks proto changes against a git ref (default: HEAD~1) with buf breaking
# (WIRE_JSON rules, see buf.yaml). `buf breaking --against .git#ref=...`
# alone cannot work here: third_party/ is git-ignored, so the base tree could
# not resolve its imports. This exports the base tree, regenerates its
# third_party/ from the base's own go.mod pins, and compares against that.
set -euo pipefail
ref=${1:-HEAD~1}
if ! git rev-parse --verify --quiet "$ref^{commit}" >/dev/null; then
  echo "buf-breaking: no commit $ref to compare against; skipped"
  exit 0
fi
if ! git cat-file -e "$ref:proto" 2>/dev/null; then
  echo "buf-breaking: $ref has no proto/ yet; skipped"
  exit 0
fi
base=$(mktemp -d)
trap 'rm -rf "$base"' EXIT
git archive "$ref" | tar -x -C "$base"
# Fall back to the current third_party/ if the base predates protodeps;
# third_party/ is excluded from the breaking rules anyway.
(cd "$base" && go run ./internal/cmd/protodeps >/dev/null 2>&1) || cp -r third_party "$base/"
npx --no-install buf breaking --against "$base"
echo "buf-breaking: no breaking change against $ref"
