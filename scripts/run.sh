#!/usr/bin/env bash
# Installs what is missing, builds, and starts faas-http on its embedded defaults: SQLite and functions in
# ./faas-data (FAAS_DATA_DIR), port 8080 (FAAS_HTTP_PORT). The admin password is FAAS_HTTP_PASSWORD or the one
# generated into ./faas-data/http-password at first start. Ctrl-C stops it.
# Extra arguments go to faas-http (see `build/frontends/http/faas-http --help`).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"

data_dir=${FAAS_DATA_DIR:-faas-data}
port=${FAAS_HTTP_PORT:-8080}
echo "faas-http on http://localhost:$port (dashboard: /admin/gui, user admin), data in $data_dir"
exec build/frontends/http/faas-http --data-dir "$data_dir" --port "$port" "$@"
