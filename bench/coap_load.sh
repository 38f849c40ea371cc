#!/usr/bin/env bash
# CoAP load test of faas-coap against what libcoap allows, in one run on the same machine.
#   1. bench/coap_bench echo: a bare libcoap server answering each POST at once, piggybacked on the ACK (the
#      ceiling);
#   2. bench/coap_bench echo separate: the same, answering as a separate response (an empty ACK, then the answer
#      in a confirmable message), which is how any server answers whose result is not ready in libcoap's handler;
#   3. faas-coap with a fresh data dir, invoking the public function `add` (a + b), every record committed
#      (counted in faas.db afterwards).
# All get the same load from bench/coap_bench load: confirmable POSTs, IN_FLIGHT (default 32) in flight (one UDP
# session each), DURATION (default 10) seconds. Usage: bench/coap_load.sh [BUILD_DIR] (ISOLATION=inprocess or
# process; default inprocess, as the other load scripts)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$repo/build}
duration=${DURATION:-10}
in_flight=${IN_FLIGHT:-32}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { for _ in $(seq 400); do grep -q "$1" "$2" && return 0; sleep 0.05; done; cat "$2"; exit 1; }
rate() { awk '{print $7}' <<<"$1" | tr -d '/s'; }

run_echo() {  # $1: "" or "separate"
  local port
  port=$(free_port)
  "$build/bench/coap_bench" echo "$port" $1 2>"$work/echo.log" &
  local pid=$!
  wait_for "listening" "$work/echo.log"
  "$build/bench/coap_bench" load "$port" add "$duration" "$in_flight"
  kill $pid; wait $pid 2>/dev/null || true
}
echo "== ceiling: bench/coap_bench echo (piggybacked)"
echo_piggybacked=$(run_echo "")
echo "== bench/coap_bench echo separate"
echo_separate=$(run_echo separate)

echo "== faas-coap: add(1, 2) per request, every record committed"
FAAS_HTTP_PASSWORD=bench "$build/frontends/coap/faas-coap" --host 127.0.0.1 --port 0 --dtls-port 0 \
  --data-dir "$work/data" --isolation "${ISOLATION:-inprocess}" --log-retention 0 ${FAAS_ARGS:-} 2>"$work/faas.log" &
faas_pid=$!
wait_for "listening on" "$work/faas.log"
port=$(grep -o '127.0.0.1:[0-9]* (coap)' "$work/faas.log" | cut -d: -f2 | cut -d' ' -f1)
dtls_port=$(grep -o '127.0.0.1:[0-9]* (coaps)' "$work/faas.log" | cut -d: -f2 | cut -d' ' -f1)
code=$(printf 'def main(a, b):\n    return a + b\n' | base64 -w0)
coap-client-openssl -m post -B 10 -u admin -k bench \
  -e "{\"name\": \"add\", \"code_b64\": \"$code\", \"settings\": {\"public\": true}}" \
  "coaps://127.0.0.1:$dtls_port/admin/upload" >/dev/null
faas=$("$build/bench/coap_bench" load "$port" add "$duration" "$in_flight")
kill -TERM $faas_pid; wait $faas_pid
records=$(/usr/bin/python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(
  "select count(*) from invocations").fetchone()[0])' "$work/data/faas.db")

echo
echo "ceiling (piggybacked): $echo_piggybacked"
echo "echo, separate:        $echo_separate"
echo "faas-coap:             $faas"
# Each connection's first request is answered with an address check (4.01 + Echo) and sent again: one record.
echo "records committed: $records of $(awk '{print $1}' <<<"$faas") calls answered"
awk -v f="$(rate "$faas")" -v c="$(rate "$echo_piggybacked")" 'BEGIN {printf "faas-coap / ceiling = %.1f%%\n", 100 * f / c}'
awk -v f="$(rate "$faas")" -v c="$(rate "$echo_separate")" 'BEGIN {printf "faas-coap / separate echo = %.1f%%\n", 100 * f / c}'
