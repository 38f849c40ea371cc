#!/usr/bin/env python3
"""What a kill -9 of one faas-mqtt node loses, in a cluster of two on one PostgreSQL and one mosquitto
(docs/scaling.md).

A node acknowledges a request to the broker only once it is in the shared inbox; the requests the broker has
delivered to it and not yet seen acknowledged are what a crash can lose (with --session-expiry 0 the broker drops
them with the session). MQTT 5's Receive Maximum (--receive-maximum) bounds them. For each receive maximum, a
client publishes REQUESTS invocations as fast as the broker takes them (QoS 1), node a is killed after a third of
them, and the answers are counted once b has taken up a's inbox (after a's lease).

Usage: bench/mqtt_failover.py [BUILD_DIR]   (REQUESTS=3000, RUNS=3, MAXIMA="10 100 1000")
"""
import base64
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import paho.mqtt.client as paho

REPO = pathlib.Path(__file__).resolve().parents[1]
BUILD = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "build"
REQUESTS = int(os.environ.get("REQUESTS", "3000"))
RUNS = int(os.environ.get("RUNS", "3"))
MAXIMA = [int(m) for m in os.environ.get("MAXIMA", "10 100 1000").split()]
sys.path.insert(0, str(REPO / "tests" / "helpers"))
from postgres import Postgres  # noqa: E402

ECHO = "def main(x):\n    return x\n"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(path, text, process):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if text in path.read_text(errors="replace"):
            return
        if process.poll() is not None:
            break
        time.sleep(0.05)
    raise SystemExit(f"{path} never said {text!r}:\n{path.read_text(errors='replace')}")


def run(work, postgres, broker_port, maximum):
    store = postgres.database()
    nodes = {}
    for name in ("a", "b"):
        log = work / f"{name}-{maximum}.log"
        nodes[name] = subprocess.Popen(
            [str(BUILD / "frontends" / "mqtt" / "faas-mqtt"), "--broker", f"tcp://127.0.0.1:{broker_port}",
             "--client-id", f"{name}-{maximum}-{uuid.uuid4().hex[:6]}", "--shared-group", "g", "--session-expiry", "0",
             "--receive-maximum", str(maximum), "--store", store, "--isolation", "inprocess",
             "--data-dir", str(work / f"{name}-{maximum}"), "--log-level", "warning"],
            stdout=open(log, "w"), stderr=subprocess.STDOUT)
        wait_for(log, "connected to", nodes[name])
    answered = set()
    lock = threading.Lock()

    def on_message(client, userdata, message):
        body = json.loads(message.payload)
        if body.get("status") == "success":
            with lock:
                answered.add(body.get("request_id"))

    client = paho.Client(client_id=f"bench-{uuid.uuid4().hex[:6]}", protocol=paho.MQTTv311)
    client.on_message = on_message
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", broker_port)
    client.loop_start()
    client.subscribe("faas/response/#", qos=1)
    code = base64.b64encode(ECHO.encode()).decode()
    client.publish("faas/admin/upload/echo", json.dumps({"code_b64": code}), qos=1).wait_for_publish(5)
    time.sleep(1.0)
    sent = []
    for i in range(REQUESTS):
        request_id = uuid.uuid4().hex
        sent.append(request_id)
        client.publish("faas/invoke/echo", json.dumps({"args": [i], "request_id": request_id}), qos=1)
        if i == REQUESTS // 3:
            nodes["a"].send_signal(signal.SIGKILL)
    # b takes up a's inbox once a's heartbeats are older than the lease (5 s).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(answered) < len(sent):
        time.sleep(0.25)
    time.sleep(1)
    lost = len(set(sent) - answered)
    client.loop_stop()
    client.disconnect()
    nodes["b"].terminate()
    nodes["b"].wait(30)
    return lost


def main():
    work = pathlib.Path(tempfile.mkdtemp(prefix="faas-failover-"))
    broker_port = free_port()
    conf = work / "mosquitto.conf"
    conf.write_text(f"listener {broker_port} 127.0.0.1\nset_tcp_nodelay true\npersistence false\n"
                    "allow_anonymous true\nmax_queued_messages 100000\n")
    broker = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    postgres = Postgres().start()
    try:
        time.sleep(0.3)
        print(f"{REQUESTS} requests per run, node a killed after {REQUESTS // 3}; lost = never answered")
        for maximum in MAXIMA:
            losses = [run(work, postgres, broker_port, maximum) for _ in range(RUNS)]
            print(f"--receive-maximum {maximum:>5}: lost {losses} (bound: {maximum})")
    finally:
        postgres.remove()
        broker.terminate()
        broker.wait(10)


if __name__ == "__main__":
    main()
