#!/usr/bin/env bash
# Run every test of couchbase-ffi on a fresh Debian 12 machine:
#   1. install the Debian packages (scripts/install-deps.sh, idempotent)
#   2. build (scripts/build.sh): libcbffi, the CLI, the C tests, the cffi extension for both interpreters
#   3. C: unit + integration tests (ctest; the integration tests start their own memcached servers
#      on free loopback ports), again under ASan+UBSan, and the integration test under valgrind
#   4. Python: pytest on CPython 3.11 and on PyPy 3.9 (memcached and the mock cluster are started
#      by the tests themselves)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
./scripts/install-deps.sh
./scripts/build.sh

step() { printf '\n=== %s\n' "$*"; }

step "C tests (ctest)"
ctest --test-dir build --output-on-failure

step "C tests under ASan+UBSan"
cmake -S . -B build-asan -DCBFFI_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-asan -j"$(nproc)" >/dev/null
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --test-dir build-asan --output-on-failure

step "integration tests under valgrind (memcached, couchbase:// against the mock cluster, hostile servers and resolvers, TLS, N1QL / view streams)"
for t in test_memcached test_couchbase test_robust test_tls test_stream; do
  CBFFI_TEST_SLACK=4 valgrind -q --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite,indirect \
    "build/tests/c/$t" > "build/valgrind-$t.log" 2>&1 || { cat "build/valgrind-$t.log"; exit 1; }
  grep -E "PASSED|FAILED" "build/valgrind-$t.log"
done

step "fuzz targets (libFuzzer, ${FUZZ_SECONDS:-8} s each)"
./tests/fuzz/run.sh

run_pytest() {
  local py=$1
  step "pytest on $($py -c 'import sys; print(sys.implementation.name, sys.version.split()[0])')"
  local rc=0
  PYTHONPATH="$ROOT/python:/usr/lib/python3/dist-packages" "$py" -m pytest -q -p no:cacheprovider tests/python || rc=$?
  # exit 5 = no tests collected: that is a failure here, never a pass
  return $rc
}
run_pytest /usr/bin/python3
run_pytest /usr/bin/pypy3
step "packaging: pip install ./python into a CPython venv and a PyPy venv (offline)"
for py in /usr/bin/python3 /usr/bin/pypy3; do
  venv="build/venv-$(basename "$py")"
  rm -rf "$venv"
  if [ "$py" = /usr/bin/python3 ]; then "$py" -m venv --system-site-packages "$venv"; else "$py" -m venv "$venv"; fi
  (cd /tmp && PYTHONPATH=/usr/lib/python3/dist-packages "$ROOT/$venv/bin/pip" install -q --no-build-isolation --no-index "$ROOT/python")
  (cd /tmp && "$ROOT/$venv/bin/python" -c "import couchbase_ffi.bucket, couchbase_ffi._cbffi as m; print('installed', m.__file__)")
done

step "all tests passed"
