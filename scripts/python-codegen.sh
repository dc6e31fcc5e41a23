#!/bin/sh
# The two code generators behind gen/python, run by buf (buf.gen.yaml):
#   scripts/python-codegen.sh protoc ARGS...   protoc, for its built-in python and pyi generators
#   scripts/python-codegen.sh grpc             the gRPC Python plugin (a protoc plugin: request on stdin)
#
# gen/python is committed and scripts/test.sh fails when it is stale, so it
# must always come out of the same generators. Their output also decides
# which runtimes can load it: protoc 3.21 writes Python that runs on the
# protobuf 4.21 runtime (Debian 12's python3-protobuf) and newer, while a
# newer protoc writes code that refuses older runtimes; gRPC's plugin from
# 1.64 on writes a check that refuses grpcio older than itself. So both are
# pinned to Debian 12's packages, which scripts/apt-install.sh installs:
# protobuf-compiler 3.21.x and protobuf-compiler-grpc 1.51.x.
#
# PROTOC and GRPC_PYTHON_PLUGIN name other binaries of the same versions
# (protoc is checked with --version; the plugin cannot report its version,
# so the check reads dpkg's record for /usr/bin/grpc_python_plugin only).
set -eu
what=${1:-}
[ $# -gt 0 ] && shift
case $what in
protoc)
  protoc=${PROTOC:-protoc}
  version=$("$protoc" --version 2>/dev/null) || version="nothing (not found or failing)"
  case $version in
  "libprotoc 3.21."*) exec "$protoc" "$@" ;;
  esac
  # buf asks for --version first and does not show what a failing call
  # prints, so that call is answered and the generating call that follows
  # fails with the reason.
  if [ "${1:-}" = --version ]; then
    echo "libprotoc 3.21.0"
    exit 0
  fi
  echo "python-codegen.sh: gen/python is generated with protoc 3.21.x (Debian 12's protobuf-compiler, see scripts/apt-install.sh); $protoc gave $version. Set PROTOC to a 3.21 protoc." >&2
  exit 1
  ;;
grpc)
  plugin=${GRPC_PYTHON_PLUGIN:-/usr/bin/grpc_python_plugin}
  if [ -z "${GRPC_PYTHON_PLUGIN:-}" ]; then
    version=$(dpkg-query -W -f '${Version}' protobuf-compiler-grpc 2>/dev/null) || version=none
    case $version in
    1.51.*) ;;
    *)
      echo "python-codegen.sh: gen/python is generated with Debian 12's protobuf-compiler-grpc 1.51.x; installed: $version. Run scripts/apt-install.sh, or set GRPC_PYTHON_PLUGIN to a 1.51 grpc_python_plugin." >&2
      exit 1
      ;;
    esac
  fi
  exec "$plugin" "$@"
  ;;
*)
  echo "usage: scripts/python-codegen.sh protoc|grpc [ARGS...] (run by buf generate)" >&2
  exit 2
  ;;
esac
