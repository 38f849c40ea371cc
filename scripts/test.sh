#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test:
#   1. an optimised build: GoogleTest units and the install test (ctest);
#   2. a build with AddressSanitizer and UndefinedBehaviorSanitizer: the units again;
#   3. the end-to-end tests (pytest) against the optimised servers (process isolation, their default), and again
#      under the sanitizers with in-process execution;
#   4. the browser test of the dashboard (inside 3, through playwright-core from npm);
#   5. the Python bindings' tests (pytest), against both builds (the sanitized module through LD_PRELOAD);
#   6. the libFuzzer targets for a bounded time (FUZZ_SECONDS, default 60).
# Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
jobs=$(nproc)

echo "== optimised build (build/)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest -j"$jobs" --output-on-failure)

echo "== ASan + UBSan build (build-asan/)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DFAAS_SANITIZE=ON -DFAAS_BUILD_BENCH=OFF >/dev/null
cmake --build build-asan -j"$jobs"
(cd build-asan && ctest -j"$jobs" --output-on-failure)

echo "== end-to-end tests (tests/e2e) against build/"
npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/e2e

# The servers isolate functions in worker processes by default; the sanitized run covers in-process execution.
echo "== the HTTP, MQTT, gRPC, CoAP and cluster end-to-end tests against build-asan/, in-process"
FAAS_ISOLATION=inprocess ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 FAAS_BUILD_DIR=build-asan \
  /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/e2e/test_http.py tests/e2e/test_mqtt.py \
  tests/e2e/test_grpc.py tests/e2e/test_coap.py tests/e2e/test_cluster.py

echo "== the Python bindings (tests/python) against build/, then build-asan/"
/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/python
# /usr/bin/python3 is not built with the sanitizers, so their runtimes must be loaded before it starts.
LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)" \
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 FAAS_BUILD_DIR=build-asan \
  /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/python

scripts/fuzz.sh
