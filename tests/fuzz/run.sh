#!/usr/bin/env bash
# Build the libFuzzer targets with clang and run each for a few seconds
# (FUZZ_SECONDS, default 8).  Crashes fail the run.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=build-fuzz
mkdir -p "$out"
secs=${FUZZ_SECONDS:-8}
# The whole library, as CMakeLists.txt's CBFFI_SOURCES lists it (one list to keep).
CORE_SRCS=$(sed -n '/set(CBFFI_SOURCES/,/)/p' CMakeLists.txt | grep -o 'src/[a-z_]*\.c' | tr '\n' ' ')
for t in codec connstr clustermap scram; do
  clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
    -Iinclude -Isrc tests/fuzz/fuzz_$t.c src/buf.c src/codec.c src/errors.c src/connstr.c \
    src/sasl.c src/clustermap.c -lcrypto -ljson-c -lz \
    -o "$out/fuzz_$t"
  mkdir -p "$out/corpus_$t"
  cp -n tests/fuzz/corpus/$t/* "$out/corpus_$t/" 2>/dev/null || true
  "$out/fuzz_$t" -max_total_time="$secs" -print_final_stats=0 "$out/corpus_$t" 2>&1 | tail -1
done

# fuzz_rowsplit: the incremental JSON row splitter of streamed N1QL / view
# responses (sans-IO: needs only the buffer)
clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
  -fno-sanitize-recover=undefined -Iinclude -Isrc tests/fuzz/fuzz_rowsplit.c \
  src/buf.c src/rowsplit.c -o "$out/fuzz_rowsplit"
mkdir -p "$out/corpus_rowsplit"
cp -n tests/fuzz/corpus/rowsplit/* "$out/corpus_rowsplit/" 2>/dev/null || true
"$out/fuzz_rowsplit" -max_total_time="$secs" -print_final_stats=0 -max_len=4096 \
  "$out/corpus_rowsplit" 2>&1 | tail -1

# fuzz_subdoc: the sub-document reply reader (a pure function of the client)
clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
  -fno-sanitize-recover=undefined -Iinclude -Isrc tests/fuzz/fuzz_subdoc.c \
  $CORE_SRCS \
  -lssl -lcrypto -ljson-c -lz -lcurl -lpthread -ldl -o "$out/fuzz_subdoc"
mkdir -p "$out/corpus_subdoc"
cp -n tests/fuzz/corpus/subdoc/* "$out/corpus_subdoc/" 2>/dev/null || true
"$out/fuzz_subdoc" -max_total_time="$secs" -print_final_stats=0 "$out/corpus_subdoc" 2>&1 | tail -1

# fuzz_server: the whole client against in-process hostile servers.  It
# overrides connect() and getaddrinfo() for the process (libcurl included),
# so they are exported.  The inputs of tests/fuzz/corpus/server-regress
# reproduced bugs that are fixed: they are run first, every time.
clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
  -fno-sanitize-recover=undefined -Iinclude -Isrc tests/fuzz/fuzz_server.c \
  $CORE_SRCS \
  -Wl,--export-dynamic-symbol=connect -Wl,--export-dynamic-symbol=getaddrinfo \
  -lssl -lcrypto -ljson-c -lz -lcurl -lpthread -ldl -o "$out/fuzz_server"
mkdir -p "$out/corpus_server"
cp -n tests/fuzz/corpus/server/* "$out/corpus_server/" 2>/dev/null || true
ASAN_OPTIONS=quarantine_size_mb=32 FUZZ_SERVER_SLACK_MS=${FUZZ_SERVER_SLACK_MS:-500} \
  "$out/fuzz_server" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 \
  -max_len=2048 -len_control=10 -print_final_stats=0 \
  "$out/corpus_server" tests/fuzz/corpus/server-regress 2>&1 | tail -1
