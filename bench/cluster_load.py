#!/usr/bin/env python3
"""Cluster mode against the embedded store, in one run on this machine (docs/performance.md):

  1. one faas-http on SQLite, then one on PostgreSQL: wrk with 64 connections (throughput), then 1 connection
     (latency of a lone synchronous call: the p50 PostgreSQL adds);
  2. two faas-http on one PostgreSQL, 32 connections each at the same time;
  3. the record writer alone (bench/record_writer) on each store.

Every server invokes add(1, 2) per request and commits its record before answering; the records are counted in
the store afterwards. PostgreSQL is a fresh server (tests/helpers/postgres.py) with its default settings
(synchronous_commit on).

Usage: bench/cluster_load.py [BUILD_DIR]   (DURATION=10s, ISOLATION=inprocess)
"""
import base64
import os
import pathlib
import re
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
BUILD = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "build"
DURATION = os.environ.get("DURATION", "10s")
ISOLATION = os.environ.get("ISOLATION", "inprocess")
sys.path.insert(0, str(REPO / "tests" / "helpers"))
from postgres import Postgres  # noqa: E402

AUTH = "Basic " + base64.b64encode(b"admin:bench").decode()
CODE = REPO / "examples" / "functions" / "calculadora" / "func.py"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Node:
    def __init__(self, work, name, store):
        self.port = free_port()
        self.log = work / f"{name}.log"
        env = {**os.environ, "FAAS_HTTP_PASSWORD": "bench"}
        self.process = subprocess.Popen(
            [str(BUILD / "frontends" / "http" / "faas-http"), "--host", "127.0.0.1", "--port", str(self.port),
             "--data-dir", str(work / name), "--store", store, "--node-id", name, "--isolation", ISOLATION,
             "--log-retention", "0", "--log-level", "warning"],
            stdout=open(self.log, "w"), stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit(f"{name} did not start:\n{self.log.read_text()}")

    def upload(self):
        subprocess.run(["curl", "-sf", "-u", "admin:bench", "-F", "name=add", "-F", f"code=@{CODE}",
                        f"http://127.0.0.1:{self.port}/admin/upload"], check=True, capture_output=True)

    def stop(self):
        self.process.terminate()
        self.process.wait(30)


def wrk(node, connections, results, key):
    threads = min(2, connections)
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{DURATION}", "--latency", "-s",
                          str(REPO / "bench" / "wrk_invoke.lua"), "-H", f"Authorization: {AUTH}",
                          f"http://127.0.0.1:{node.port}/function/add"], capture_output=True, text=True,
                         check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)
    answered = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    results[key] = (rps, p50, answered, int(bad.group(1)) if bad else 0)


def micros(text):
    value = float(re.match(r"[\d.]+", text).group(0))
    return value * {"us": 1, "ms": 1000, "s": 1e6}[re.search(r"[a-z]+$", text).group(0)]


def main():
    work = pathlib.Path(tempfile.mkdtemp(prefix="faas-cluster-bench-"))
    postgres = Postgres().start()
    results = {}
    try:
        print("PostgreSQL synchronous_commit =", postgres.psql("SHOW synchronous_commit"))
        for label, store in (("sqlite", "sqlite"), ("postgresql", postgres.database())):
            node = Node(work, label, store)
            node.upload()
            wrk(node, 64, results, f"{label} 64")
            wrk(node, 1, results, f"{label} 1")
            node.stop()
        store = postgres.database()
        nodes = [Node(work, name, store) for name in ("a", "b")]
        nodes[0].upload()
        time.sleep(0.5)
        threads = [threading.Thread(target=wrk, args=(node, 32, results, f"two {node.port}")) for node in nodes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for node in nodes:
            node.stop()
        pg_records = int(postgres.psql("SELECT count(*) FROM invocations", store.rsplit("/", 1)[1]))
        writer = {}
        for label, target in (("sqlite", str(work / "writer")), ("postgresql", postgres.database())):
            out = subprocess.run([str(BUILD / "bench" / "record_writer"), target, "5", "256"], capture_output=True,
                                 text=True, check=True).stdout
            writer[label] = float(re.search(r"records/s (\d+)", out).group(1))
    finally:
        postgres.remove()

    print(f"\n{'run':<28} {'requests/s':>11} {'p50':>9} {'answered':>9} {'non-2xx':>8}")
    for key, (rps, p50, answered, bad) in results.items():
        print(f"{key:<28} {rps:>11.0f} {p50:>9} {answered:>9} {bad:>8}")
    sqlite_rps, pg_rps = results["sqlite 64"][0], results["postgresql 64"][0]
    two = sum(rps for key, (rps, *_rest) in results.items() if key.startswith("two "))
    two_answered = sum(answered for key, (_r, _p, answered, _b) in results.items() if key.startswith("two "))
    added = micros(results["postgresql 1"][1]) - micros(results["sqlite 1"][1])
    print(f"\none node, 64 connections: PostgreSQL / SQLite = {100 * pg_rps / sqlite_rps:.1f}% (target >= 60%)")
    print(f"lone synchronous call: PostgreSQL adds {added:.0f} us to the p50 (target <= 1000 us)")
    print(f"two nodes on one PostgreSQL: {two:.0f} requests/s together ({100 * two / pg_rps:.0f}% of one node); "
          f"{pg_records} records committed for {two_answered} answers")
    print(f"record writer, 256 in flight: SQLite {writer['sqlite']:.0f}/s, PostgreSQL {writer['postgresql']:.0f}/s "
          f"(target >= 40,000/s)")
    failed = any(bad for (_r, _p, _a, bad) in results.values()) or pg_records < two_answered
    sqlite_count = sqlite3.connect(work / "sqlite" / "faas.db").execute("SELECT count(*) FROM invocations").fetchone()[0]
    if failed or sqlite_count < results["sqlite 64"][2] + results["sqlite 1"][2]:
        raise SystemExit("FAIL: errors or missing records")


if __name__ == "__main__":
    main()
