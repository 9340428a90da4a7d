#!/usr/bin/env bash
# Build everything: libcbffi (static + shared), the cbffi CLI and the C tests
# into build/, and the Python extension in place for CPython and PyPy, so that
# PYTHONPATH=python imports couchbase_ffi on both interpreters.
set -euo pipefail
cd "$(dirname "$0")/.."
"$PWD/scripts/install-deps.sh"
BUILD=${BUILD_DIR:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)" >/dev/null
for py in /usr/bin/python3 /usr/bin/pypy3; do
  (cd python && PYTHONPATH=/usr/lib/python3/dist-packages "$py" build_cffi.py --inplace >/dev/null)
done
echo "build: $BUILD/cbffi, $BUILD/libcbffi.{a,so}, python/couchbase_ffi/_cbffi.*.so"
