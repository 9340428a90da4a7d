#!/usr/bin/env bash
# Build the libFuzzer targets with clang and run each for a few seconds
# (FUZZ_SECONDS, default 10).  Crashes fail the run.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=build-fuzz
mkdir -p "$out"
secs=${FUZZ_SECONDS:-8}
for t in codec connstr clustermap scram; do
  clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
    -Iinclude -Isrc tests/fuzz/fuzz_$t.c src/buf.c src/codec.c src/errors.c src/connstr.c \
    src/sasl.c src/clustermap.c -lcrypto -ljson-c -lz \
    -o "$out/fuzz_$t"
  mkdir -p "$out/corpus_$t"
  cp -n tests/fuzz/corpus/$t/* "$out/corpus_$t/" 2>/dev/null || true
  "$out/fuzz_$t" -max_total_time="$secs" -print_final_stats=0 "$out/corpus_$t" 2>&1 | tail -1
done
