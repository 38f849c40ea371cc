#!/usr/bin/env python3
"""Many functions on one faas-http: upload N (default 1000), invoke each once, and report the live workers (at
most, and at the end) and the resident memory of the server and all its workers.

    bench/many_functions.py [BUILD_DIR] [N] [extra faas-http options...]
"""
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

import requests

build = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "build")
count = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
extra = sys.argv[3:]


def descendants(root):
    parent_of = {}
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                parent_of[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    found = []
    for pid in parent_of:
        up = parent_of.get(pid)
        while up and up > 1:
            if up == root:
                found.append(pid)
                break
            up = parent_of.get(up)
    return found


def rss_kb(pid):
    try:
        match = re.search(r"VmRSS:\s+(\d+)", pathlib.Path(f"/proc/{pid}/status").read_text())
        return int(match.group(1)) if match else 0
    except OSError:
        return 0


def workers(root):
    out = []
    for pid in descendants(root):
        try:
            argv0 = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if argv0.endswith(b"faas-worker"):
            out.append(pid)
    return out


with tempfile.TemporaryDirectory() as work:
    env = dict(os.environ, FAAS_HTTP_PASSWORD="bench")
    log = open(pathlib.Path(work) / "faas-http.log", "w")
    server = subprocess.Popen([str(build / "frontends/http/faas-http"), "--host", "127.0.0.1", "--port", "0",
                               "--data-dir", str(pathlib.Path(work) / "data"), *extra], stderr=log, env=env)
    try:
        deadline = time.monotonic() + 20
        port = None
        while port is None and time.monotonic() < deadline:
            text = (pathlib.Path(work) / "faas-http.log").read_text()
            found = re.search(r"listening on [\d.]+:(\d+)", text)
            port = int(found.group(1)) if found else None
            time.sleep(0.05)
        url, auth = f"http://127.0.0.1:{port}", ("admin", "bench")
        most = 0
        started = time.monotonic()
        for i in range(count):
            code = f"def main(a):\n    return a + {i}\n"
            response = requests.post(f"{url}/admin/upload", files={"code": ("func.py", code)}, data={"name": f"f{i}"},
                                     auth=auth, timeout=60)
            assert response.status_code == 200, response.text
            answer = requests.post(f"{url}/function/f{i}", json={"args": [1]}, auth=auth, timeout=60).json()
            assert answer.get("result") == 1 + i, answer
            if i % 50 == 0:
                most = max(most, len(workers(server.pid)))
        elapsed = time.monotonic() - started
        time.sleep(1)
        live = workers(server.pid)
        most = max(most, len(live))
        total_kb = rss_kb(server.pid) + sum(rss_kb(pid) for pid in descendants(server.pid))
        worker_kb = sum(rss_kb(pid) for pid in live)
        print(f"{count} functions uploaded and invoked once in {elapsed:.1f} s; live workers: {len(live)} at the end, "
              f"{most} at most (sampled every 50)")
        print(f"RSS: server {rss_kb(server.pid) / 1024:.1f} MB, workers {worker_kb / 1024:.1f} MB "
              f"({worker_kb / 1024 / max(1, len(live)):.1f} MB each), everything {total_kb / 1024:.1f} MB")
    finally:
        server.terminate()
        server.wait(60)
