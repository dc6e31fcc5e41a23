#!/usr/bin/env bash
# Installs the Debian packages the test suite uses, skipping those already
# installed (a second run costs a dpkg query, not an apt-get update).
#   chromium                      headless browser for the inspector's e2e tests
#   python3-protobuf python3-grpcio  the Python client's runtime (Debian's python3)
#   protobuf-compiler protobuf-compiler-grpc libprotobuf-dev
#                                 protoc and grpc_python_plugin for the Python stubs
#   python3-venv python3-setuptools python3-wheel
#                                 a virtualenv to pip-install clients/python in (offline)
set -euo pipefail
pkgs=(chromium python3-protobuf python3-grpcio protobuf-compiler protobuf-compiler-grpc libprotobuf-dev
  python3-venv python3-setuptools python3-wheel)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "all ${#pkgs[@]} Debian packages present"
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
