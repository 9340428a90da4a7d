#!/usr/bin/env bash
# The one list of Debian packages couchbase-ffi needs: build, tests, benchmarks.
# Idempotent: installs only what is missing. Everything else (tests, bench, CI) calls this.
set -euo pipefail

PKGS=(
  # build
  build-essential cmake pkg-config
  libssl-dev zlib1g-dev libjson-c-dev libcurl4-openssl-dev
  # C tests
  libcmocka-dev valgrind memcached
  sasl2-bin libsasl2-modules        # memcached -S for the SASL tests (saslpasswd2, PLAIN, SCRAM)
  clang libclang-rt-14-dev          # libFuzzer targets (tests/fuzz)
  # python, both interpreters, cffi
  python3 python3-cffi python3-dev python3-venv python3-pip python3-setuptools python3-wheel
  pypy3 pypy3-dev pypy3-venv
  python3-pytest python3-exceptiongroup python3-tomli
  python3-twisted
  # peers for interop tests and benchmarks
  python3-pylibmc python3-pymemcache libmemcached-dev libmemcached-tools
  python3-matplotlib
  # tools used by the bench scripts
  util-linux procps
)

# Node.js (for the official Couchbase SDK run against the mock): any build that has npm will do;
# nodesource's nodejs bundles npm and conflicts with Debian's npm package.
if ! command -v npm >/dev/null 2>&1; then
  PKGS+=(nodejs npm)
fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# The official Couchbase Node.js SDK 4.x (prebuilt binary, from the npm registry) for
# tests/python/test_node_sdk.py, which runs it against the mock cluster: tests/node/package.json.
NODE_DIR="$(cd "$(dirname "$0")/.." && pwd)/tests/node"
if [ ! -d "$NODE_DIR/node_modules/couchbase" ]; then
  echo "install-deps: npm install in tests/node (couchbase SDK)" >&2
  (cd "$NODE_DIR" && npm install --no-audit --no-fund >&2)
fi
