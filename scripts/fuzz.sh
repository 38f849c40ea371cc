#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for a bounded time (default 60 s each; FUZZ_SECONDS=N):
#   multipart_fuzzer     faas-http's multipart/form-data parser
#   invoke_body_fuzzer   the invocation-body parser every HTTP and MQTT invocation goes through
#   worker_frame_fuzzer  the engine's reader of the frames faas-worker processes send
#   requirements_fuzzer  the requirements.txt checker that runs before pip
#   mqtt_wire_fuzzer     faas-mqtt's decoder of the packets a broker sends
#   cron_fuzzer          the cron expressions of functions' schedules
#   coap_transfer_fuzzer faas-coap's bounded memories: retransmitted answers, block-wise bodies, proved addresses
#   postgres_text_fuzzer the text[] and COPY forms every record takes to PostgreSQL, and the UTF-8 repair
# New inputs go to build-fuzz/corpus, never into the committed starting corpus. Exits non-zero on a finding.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
targets=(multipart invoke_body worker_frame requirements mqtt_wire cron coap_transfer postgres_text)

cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DFAAS_BUILD_FUZZERS=ON -DFAAS_BUILD_TESTS=OFF -DFAAS_BUILD_BENCH=OFF -DFAAS_BUILD_PYTHON=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target "${targets[@]/%/_fuzzer}"

mkdir -p build-fuzz/findings
for target in "${targets[@]}"; do
  mkdir -p "build-fuzz/corpus/$target"
  cp -n "tests/fuzz/corpus/$target"/* "build-fuzz/corpus/$target/"
  echo "== fuzzing $target for ${seconds}s"
  "build-fuzz/tests/fuzz/${target}_fuzzer" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
    -artifact_prefix=build-fuzz/findings/ -print_final_stats=1 "build-fuzz/corpus/$target" 2>&1 | tail -n 12
done
