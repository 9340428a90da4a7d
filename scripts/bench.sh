#!/usr/bin/env bash
# The main job: build, then run the benchmark table (couchbase-ffi on PyPy and CPython beside pylibmc,
# pymemcache, twisted.protocols.memcache, libmemcached from C and a raw-socket C floor) against a
# memcached that bench/run.py starts on a free loopback port and stops afterwards.
# Short version by default (about two minutes); pass --full for the long one.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh
exec /usr/bin/python3 bench/run.py "$@"
