#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: first an optimised build, then one with
# AddressSanitizer and UndefinedBehaviorSanitizer. Exits non-zero on the first failure.
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

if compgen -G "tests/e2e/test_*.py" >/dev/null; then
  echo "== end-to-end tests"
  /usr/bin/python3 -m pytest -q tests/e2e
fi
