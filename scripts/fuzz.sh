#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for a bounded time (default 60 s; FUZZ_SECONDS=N).
# New inputs go to build-fuzz/corpus, never into the committed seeds. Exits non-zero on a finding.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}

cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DFAAS_BUILD_FUZZERS=ON -DFAAS_BUILD_TESTS=OFF -DFAAS_BUILD_BENCH=OFF >/dev/null
cmake --build build-fuzz --target multipart_fuzzer -j"$(nproc)"

mkdir -p build-fuzz/corpus/multipart build-fuzz/findings
cp -n tests/fuzz/seeds/multipart/* build-fuzz/corpus/multipart/
echo "== fuzzing the multipart parser for ${seconds}s"
build-fuzz/tests/fuzz/multipart_fuzzer -max_total_time="$seconds" -max_len=4096 -timeout=10 \
  -artifact_prefix=build-fuzz/findings/ -print_final_stats=1 build-fuzz/corpus/multipart 2>&1 | tail -n 12
