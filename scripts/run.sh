#!/usr/bin/env bash
# Installs what is missing, builds, and starts libfaas on its embedded defaults:
#   - faas-http on port 8080 (FAAS_HTTP_PORT), dashboard at /admin/gui;
#   - a local mosquitto on port 1883 (FAAS_MQTT_PORT) with TCP_NODELAY, unless a broker already listens there;
#   - faas-mqtt connected to it;
#   - faas-grpc on port 50051 (FAAS_GRPC_PORT);
#   - faas-coap on UDP ports 5683 (coap://, FAAS_COAP_PORT) and 5684 (coaps://, FAAS_COAP_DTLS_PORT).
# The servers share ./faas-data (FAAS_DATA_DIR): SQLite, functions and virtualenvs. The HTTP admin password is
# FAAS_HTTP_PASSWORD or the one generated into ./faas-data/http-password at first start. Other settings come from
# the environment variables of docs/http.md and docs/mqtt.md (FAAS_TIMEOUT, ...). Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"

data_dir=${FAAS_DATA_DIR:-faas-data}
http_port=${FAAS_HTTP_PORT:-8080}
mqtt_port=${FAAS_MQTT_PORT:-1883}
grpc_port=${FAAS_GRPC_PORT:-50051}
coap_port=${FAAS_COAP_PORT:-5683}
coaps_port=${FAAS_COAP_DTLS_PORT:-5684}
mkdir -p "$data_dir"
trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT INT TERM

if (exec 3<>"/dev/tcp/127.0.0.1/$mqtt_port") 2>/dev/null; then
  echo "using the MQTT broker already listening on port $mqtt_port"
else
  printf 'listener %s 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n' "$mqtt_port" >"$data_dir/mosquitto.conf"
  mosquitto -c "$data_dir/mosquitto.conf" &
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$mqtt_port") 2>/dev/null && break; sleep 0.05; done
fi

build/frontends/mqtt/faas-mqtt --broker "tcp://127.0.0.1:$mqtt_port" --data-dir "$data_dir" &
build/frontends/http/faas-http --port "$http_port" --data-dir "$data_dir" &
build/frontends/grpc/faas-grpc --port "$grpc_port" --data-dir "$data_dir" &
build/frontends/coap/faas-coap --port "$coap_port" --dtls-port "$coaps_port" --data-dir "$data_dir" &
echo "faas-http on http://localhost:$http_port (dashboard: /admin/gui, user admin); faas-mqtt on tcp://127.0.0.1:$mqtt_port;"
echo "faas-grpc on localhost:$grpc_port; faas-coap on coap://localhost:$coap_port and coaps://localhost:$coaps_port"
wait -n
