#!/usr/bin/env bash
# MQTT load test of faas-mqtt against the ceiling the broker allows, in one run on the same machine.
#   1. bench/mqtt_bench echo: a bare responder on the same Paho client, answering each invocation at once;
#   2. faas-mqtt with a fresh data dir, invoking `add` (a + b) for every message, every record committed.
# Both get the same load: QoS 1, WINDOW (default 32) invocations in flight, DURATION (default 20) seconds, through
# a local mosquitto started with set_tcp_nodelay true. Usage: bench/mqtt_load.sh [BUILD_DIR] (ISOLATION=inprocess
# or process)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$repo/build}
duration=${DURATION:-20}
window=${WINDOW:-32}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
broker="tcp://127.0.0.1:$port"
printf 'listener %s 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\npersistence false\n' "$port" \
  >"$work/mosquitto.conf"
mosquitto -c "$work/mosquitto.conf" 2>"$work/mosquitto.log" &
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
wait_for() { for _ in $(seq 400); do grep -q "$1" "$2" && return 0; sleep 0.05; done; cat "$2"; exit 1; }

echo "== ceiling: bench/mqtt_bench echo"
"$build/bench/mqtt_bench" echo "$broker" 2>"$work/echo.log" &
echo_pid=$!
wait_for "listening" "$work/echo.log"
ceiling=$("$build/bench/mqtt_bench" load "$broker" "$duration" "$window")
kill $echo_pid; wait $echo_pid 2>/dev/null || true

echo "== faas-mqtt: add(1, 2) per message, every record committed"
"$build/frontends/mqtt/faas-mqtt" --broker "$broker" --client-id bench --data-dir "$work/data" \
  --isolation "${ISOLATION:-inprocess}" --log-retention 0 \
  ${FAAS_ARGS:-} 2>"$work/faas.log" &
faas_pid=$!
wait_for "connected to" "$work/faas.log"
/usr/bin/python3 - "$port" "$repo/examples/functions/calculadora/func.py" <<'PY'
import base64, json, sys, threading
import paho.mqtt.client as paho
port, path = int(sys.argv[1]), sys.argv[2]
done = threading.Event()
client = paho.Client()
client.on_message = lambda c, u, m: done.set()
client.connect("127.0.0.1", port)
client.subscribe("faas/response/admin/upload/add", 1)
client.loop_start()
client.publish("faas/admin/upload/add", json.dumps({"code_b64": base64.b64encode(open(path, "rb").read()).decode()}), 1)
assert done.wait(30), "upload not answered"
client.loop_stop()
PY
faas=$("$build/bench/mqtt_bench" load "$broker" "$duration" "$window")
kill -TERM $faas_pid; wait $faas_pid
records=$(/usr/bin/python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(
  "select count(*) from invocations where function = ?", ("add",)).fetchone()[0])' "$work/data/faas.db")

echo
echo "ceiling:   $ceiling"
echo "faas-mqtt: $faas"
c_rate=$(awk '{print $6}' <<<"$ceiling" | tr -d '/s'); f_rate=$(awk '{print $6}' <<<"$faas" | tr -d '/s')
awk -v f="$f_rate" -v c="$c_rate" 'BEGIN {printf "faas-mqtt / ceiling = %.1f%%\n", 100 * f / c}'
answered=$(awk '{print $2}' <<<"$faas")
echo "records committed: $records (the load generator counted $answered answers)"
if ((records < answered)); then echo "FAIL: missing records"; exit 1; fi
