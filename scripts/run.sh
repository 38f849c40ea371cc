#!/usr/bin/env bash
# Installs what is missing, builds, and runs libfaas on its embedded defaults (SQLite in ./faas-data).
# The HTTP and MQTT servers are not built yet; until they are, this runs the embedding demo
# (examples/embed): it uploads examples/functions/calculadora, invokes it and prints the records and status.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"

prefix=build/install
cmake --install build --prefix "$prefix" >/dev/null
cmake -S examples/embed -B build/embed -DCMAKE_PREFIX_PATH="$PWD/$prefix" >/dev/null
cmake --build build/embed -j"$(nproc)" >/dev/null
exec build/embed/faas-embed-example examples/functions/calculadora "${FAAS_DATA_DIR:-faas-data}"
