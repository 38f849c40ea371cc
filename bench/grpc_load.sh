#!/usr/bin/env bash
# gRPC load test of faas-grpc against the ceiling the gRPC library allows, in one run on the same machine.
#   1. bench/grpc_bench echo: a bare libfaas.v1.Faas on the same library, answering each call at once;
#   2. faas-grpc with a fresh data dir: Invoke runs `add` (a + b), InvokeStream a generator yielding 1, 2, 3;
#      every record committed (counted in faas.db afterwards).
# Both get the same load from bench/grpc_bench load: IN_FLIGHT (default 64) calls in flight on one channel for
# DURATION (default 10) seconds, unary then streaming. Usage: bench/grpc_load.sh [BUILD_DIR] (ISOLATION=inprocess
# or process; default inprocess, as the other load scripts)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$repo/build}
duration=${DURATION:-10}
in_flight=${IN_FLIGHT:-64}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { for _ in $(seq 400); do grep -q "$1" "$2" && return 0; sleep 0.05; done; cat "$2"; exit 1; }
rate() { awk '{print $7}' <<<"$1" | tr -d '/s'; }

echo "== ceiling: bench/grpc_bench echo"
port=$(free_port)
"$build/bench/grpc_bench" echo "$port" 2>"$work/echo.log" &
echo_pid=$!
wait_for "listening" "$work/echo.log"
echo_unary=$("$build/bench/grpc_bench" load "127.0.0.1:$port" invoke add "$duration" "$in_flight")
echo_stream=$("$build/bench/grpc_bench" load "127.0.0.1:$port" stream count "$duration" "$in_flight")
kill $echo_pid; wait $echo_pid 2>/dev/null || true

echo "== faas-grpc: add(1, 2) per Invoke, a 3-chunk generator per InvokeStream, every record committed"
port=$(free_port)
FAAS_HTTP_PASSWORD=bench "$build/frontends/grpc/faas-grpc" --host 127.0.0.1 --port "$port" --data-dir "$work/data" \
  --isolation "${ISOLATION:-inprocess}" --log-retention 0 ${FAAS_ARGS:-} 2>"$work/faas.log" &
faas_pid=$!
wait_for "listening on" "$work/faas.log"
/usr/bin/python3 - "$port" "$repo/tests/helpers" <<'PY'
import base64, sys
sys.path.insert(0, sys.argv[2])
import grpc
from grpc_client import FaasClient, basic
client = FaasClient(grpc.insecure_channel(f"127.0.0.1:{sys.argv[1]}"), [basic("admin", "bench")])
client.Upload(name="add", code="def main(a, b):\n    return a + b\n")
client.Upload(name="count", code="def main():\n    yield 1\n    yield 2\n    yield 3\n")
PY
faas_unary=$("$build/bench/grpc_bench" load "127.0.0.1:$port" invoke add "$duration" "$in_flight" bench)
faas_stream=$("$build/bench/grpc_bench" load "127.0.0.1:$port" stream count "$duration" "$in_flight" bench)
kill -TERM $faas_pid; wait $faas_pid
records=$(/usr/bin/python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(
  "select count(*) from invocations").fetchone()[0])' "$work/data/faas.db")

echo
echo "unary     ceiling:   $echo_unary"
echo "unary     faas-grpc: $faas_unary"
echo "streaming ceiling:   $echo_stream"
echo "streaming faas-grpc: $faas_stream"
calls=$(( $(awk '{print $1}' <<<"$faas_unary") + $(awk '{print $1}' <<<"$faas_stream") ))
echo "records committed: $records of $calls calls answered"
awk -v f="$(rate "$faas_unary")" -v c="$(rate "$echo_unary")" 'BEGIN {printf "unary faas-grpc / ceiling = %.1f%%\n", 100 * f / c}'
awk -v f="$(rate "$faas_stream")" -v c="$(rate "$echo_stream")" 'BEGIN {printf "streaming faas-grpc / ceiling = %.1f%%\n", 100 * f / c}'
