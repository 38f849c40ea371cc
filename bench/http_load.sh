#!/usr/bin/env bash
# Load test of faas-http against the ceiling of its HTTP stack, in one run on the same machine.
#   1. bench/http_ceiling: a minimal Beast server answering a fixed JSON body;
#   2. faas-http with a fresh data dir, invoking `add` (a + b) for every request, every record committed.
# Both get the same wrk load: keep-alive, 2 threads, 64 connections, POST /function/add {"args":[1,2]}.
# Usage: bench/http_load.sh [BUILD_DIR] (DURATION=20s, CONNECTIONS=64, THREADS=2, ISOLATION=inprocess,
# FAAS_ARGS="..." to override).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$repo/build}
duration=${DURATION:-20s}
connections=${CONNECTIONS:-64}
threads=${THREADS:-2}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_listening() { for _ in $(seq 200); do grep -q "listening on" "$1" && return 0; sleep 0.05; done; cat "$1"; exit 1; }
load() {  # URL [wrk options...] → wrk's report
  local url=$1; shift
  wrk -t"$threads" -c"$connections" -d"$duration" --latency -s "$repo/bench/wrk_invoke.lua" "$@" "$url"
}
summary() {  # wrk report → "req/s p50 p99 requests non2xx"
  awk '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} / requests in / {n=$1}
       /Non-2xx/ {bad=$NF} END {printf "%s %s %s %s %s\n", rps, p50, p99, n, bad+0}'
}

echo "== ceiling: bench/http_ceiling (Beast, fixed JSON body)"
port=$(free_port)
"$build/bench/http_ceiling" "$port" 2>"$work/ceiling.log" &
ceiling_pid=$!
wait_listening "$work/ceiling.log"
load "http://127.0.0.1:$port/function/add" >"$work/ceiling.txt"
kill $ceiling_pid; wait $ceiling_pid 2>/dev/null || true
read -r c_rps c_p50 c_p99 c_n c_bad < <(summary <"$work/ceiling.txt")

echo "== faas-http: add(1, 2) per request, every record committed"
port=$(free_port)
export FAAS_HTTP_PASSWORD=bench
"$build/frontends/http/faas-http" --host 127.0.0.1 --port "$port" --data-dir "$work/data" \
  --isolation "${ISOLATION:-inprocess}" --log-retention 0 \
  ${FAAS_ARGS:-} 2>"$work/faas.log" &
faas_pid=$!
wait_listening "$work/faas.log"
curl -sf -u admin:bench -F name=add -F "code=@$repo/examples/functions/calculadora/func.py" \
  "http://127.0.0.1:$port/admin/upload" >/dev/null
load "http://127.0.0.1:$port/function/add" -H "Authorization: Basic $(printf admin:bench | base64)" >"$work/faas.txt"
kill -TERM $faas_pid; wait $faas_pid
read -r f_rps f_p50 f_p99 f_n f_bad < <(summary <"$work/faas.txt")
records=$(/usr/bin/python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(
  "select count(*) from invocations where function = ?", ("add",)).fetchone()[0])' "$work/data/faas.db")

printf '\n%-12s %12s %10s %10s %12s %8s\n' server "requests/s" p50 p99 requests non-2xx
printf '%-12s %12s %10s %10s %12s %8s\n' ceiling "$c_rps" "$c_p50" "$c_p99" "$c_n" "$c_bad"
printf '%-12s %12s %10s %10s %12s %8s\n' faas-http "$f_rps" "$f_p50" "$f_p99" "$f_n" "$f_bad"
awk -v f="$f_rps" -v c="$c_rps" 'BEGIN {printf "faas-http / ceiling = %.1f%%\n", 100 * f / c}'
echo "records committed: $records (wrk counted $f_n answers)"
if ((f_bad != 0 || records < f_n)); then echo "FAIL: errors or missing records"; exit 1; fi
