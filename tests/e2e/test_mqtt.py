"""faas-mqtt end to end, as a user drives it with paho-mqtt through a real mosquitto (docs/mqtt.md)."""
import base64
import json
import queue
import re
import signal
import subprocess
import threading
import time
import uuid

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
import pytest

from gate import GATED_GENERATOR, Gate
from make_wheel import make_wheel

ADD = "def main(a, b):\n    return a + b\n"


def b64(text):
    return base64.b64encode(text.encode()).decode()


class Client:
    """A paho-mqtt client that records everything published under faas/response/ (and any extra topics)."""

    def __init__(self, broker, version=paho.MQTTv311, topics=("faas/response/#",), client_id="", setup=None):
        self.messages = queue.Queue()
        self.client = paho.Client(client_id=client_id, protocol=version)
        if setup:
            setup(self.client)  # credentials, TLS
        self.client.on_message = lambda client, userdata, message: self.messages.put(message)
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: subscribed.set()
        if version == paho.MQTTv5:
            self.client.connect("127.0.0.1", broker.port, clean_start=True)
        else:
            self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        self.client.subscribe([(topic, 1) for topic in topics])
        assert subscribed.wait(5)

    def publish(self, topic, payload, properties=None, retain=False):
        data = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
        self.client.publish(topic, data, qos=1, properties=properties, retain=retain).wait_for_publish(5)

    def expect(self, topic, timeout=10, where=lambda body: True):
        """The JSON body of the next message on `topic` that satisfies `where`; others are set aside."""
        deadline = time.monotonic() + timeout
        aside = []
        try:
            while time.monotonic() < deadline:
                try:
                    message = self.messages.get(timeout=max(0.01, deadline - time.monotonic()))
                except queue.Empty:
                    break
                body = json.loads(message.payload) if message.payload else None
                if message.topic == topic and where(body):
                    self.last = message
                    return body
                aside.append(message)
        finally:
            for message in aside:
                self.messages.put(message)
        raise AssertionError(f"nothing on {topic} within {timeout}s; saw {[m.topic for m in aside]}")

    def call(self, topic, payload, answer_topic, timeout=10):
        request_id = str(uuid.uuid4())
        body = dict(payload, request_id=request_id)
        self.publish(topic, body)
        return self.expect(answer_topic, timeout, lambda b: b and b.get("request_id") == request_id)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def client(broker):
    c = Client(broker)
    yield c
    c.close()


@pytest.fixture
def server(start_mqtt):
    return start_mqtt()


def upload(client, name, code, requirements=None):
    payload = {"code_b64": b64(code)}
    if requirements is not None:
        payload["req_b64"] = b64(requirements)
    return client.call(f"faas/admin/upload/{name}", payload, f"faas/response/admin/upload/{name}", timeout=60)


def test_every_topic_of_the_contract(server, client):
    answer = upload(client, "calc", ADD)
    assert answer["status"] == "ok" and answer["function"] == "calc"

    record = client.call("faas/invoke/calc", {"args": [10, 20]}, "faas/response/invoke/calc")
    assert record["result"] == 30 and record["status"] == "success" and record["function"] == "calc"
    assert {"id", "args", "time_start", "time_end", "duration_ms", "stdout"} <= set(record)

    assert client.call("faas/admin/list", {}, "faas/response/admin/list")["functions"] == ["calc"]
    status = client.call("faas/admin/status", {}, "faas/response/admin/status")
    assert status["status"] == "running" and status["loaded_functions"] == 1
    assert "process_milicpu" in status["cpu_usage_absolute"]

    logs = client.call("faas/admin/logs/calc", {"limit": 5}, "faas/response/admin/logs/calc")["logs"]
    assert [r["result"] for r in logs] == [30]

    deleted = client.call("faas/admin/delete/calc", {}, "faas/response/admin/delete/calc")
    assert deleted["status"] == "deleted" and deleted["function"] == "calc"
    assert client.call("faas/admin/list", {}, "faas/response/admin/list")["functions"] == []


def test_versions_rollback_and_pinned_calls_over_mqtt(server, client):
    for v in (1, 2, 3):
        upload(client, "versioned", f"def main():\n    return {v}\n")
    versions = client.call("faas/admin/versions/versioned", {}, "faas/response/admin/versions/versioned")["versions"]
    assert [v["version"] for v in versions] == [3, 2, 1] and versions[0]["current"]
    answer = client.call("faas/admin/rollback/versioned", {"version": 1}, "faas/response/admin/rollback/versioned",
                         timeout=60)
    assert answer["status"] == "ok" and answer["version"] == 1
    record = client.call("faas/invoke/versioned", {"args": []}, "faas/response/invoke/versioned")
    assert record["result"] == 1 and record["version"] == 1
    record = client.call("faas/invoke/versioned", {"args": [], "version": 2}, "faas/response/invoke/versioned")
    assert record["result"] == 2 and record["version"] == 2
    error = client.call("faas/invoke/versioned", {"args": [], "version": 9}, "faas/response/error")
    assert error["code"] == "not_found" and "version 9" in error["error"]
    error = client.call("faas/admin/rollback/versioned", {"version": "x"}, "faas/response/error")
    assert error["code"] == "invalid_input" and error["command"] == "rollback"


def test_settings_are_read_and_changed_over_mqtt(server, client):
    upload(client, "calc", ADD)
    answer = client.call("faas/admin/settings/calc", {}, "faas/response/admin/settings/calc")  # reads them
    assert answer["function"] == "calc"
    assert "timeout" in answer["settings"]["defaults"]
    answer = client.call("faas/admin/settings/calc", {"timeout": 2, "secrets": {"KEY": "v4lue"}},
                         "faas/response/admin/settings/calc")
    assert answer["settings"]["timeout"] == 2 and answer["settings"]["secrets"] == ["KEY"]
    assert "v4lue" not in json.dumps(answer)
    error = client.call("faas/admin/settings/calc", {"timeout": "x"}, "faas/response/error")
    assert error["code"] == "invalid_input" and error["command"] == "settings"
    error = client.call("faas/admin/settings/nope", {}, "faas/response/error")
    assert error["code"] == "not_found"
    # Settings may come with an upload too.
    payload = {"code_b64": b64(ADD), "settings": {"max_workers": 2}}
    client.call("faas/admin/upload/calc2", payload, "faas/response/admin/upload/calc2", timeout=60)
    settings = client.call("faas/admin/settings/calc2", {}, "faas/response/admin/settings/calc2")["settings"]
    assert settings["max_workers"] == 2


def test_request_id_is_echoed_or_generated(server, client):
    upload(client, "calc", ADD)
    client.publish("faas/invoke/calc", {"args": [1, 1], "request_id": "mine-1"})
    assert client.expect("faas/response/invoke/calc")["request_id"] == "mine-1"
    client.publish("faas/invoke/calc", {"args": [2, 2]})
    generated = client.expect("faas/response/invoke/calc", where=lambda b: b["result"] == 4)["request_id"]
    assert uuid.UUID(generated).version == 4
    client.publish("faas/admin/list", b"")
    assert uuid.UUID(client.expect("faas/response/admin/list")["request_id"]).version == 4


def test_a_raising_function_answers_with_its_error_record(server, client):
    upload(client, "div", "def main(a, b):\n    return a / b\n")
    record = client.call("faas/invoke/div", {"args": [1, 0]}, "faas/response/invoke/div")
    assert record["status"] == "error" and record["error_type"] == "ZeroDivisionError" and "result" not in record


@pytest.mark.parametrize("topic, payload, command, code, words", [
    ("faas/invoke/nope", {"args": []}, "invoke", "not_found", "not found"),
    ("faas/invoke/calc", "{not json", "invoke", "invalid_input", "JSON"),
    ("faas/invoke/calc", "[1, 2]", "invoke", "invalid_input", "object"),
    ("faas/invoke/calc", {"args": "no"}, "invoke", "invalid_input", "args"),
    ("faas/admin/upload/x", {"code_b64": "***"}, "upload", "invalid_input", "base64"),
    ("faas/admin/upload/x", {}, "upload", "invalid_input", "code_b64"),
    ("faas/admin/upload/x", "[]", "upload", "invalid_input", "object"),
    ("faas/admin/frobnicate", {}, "frobnicate", "invalid_input", "unknown command"),
    ("faas/admin/logs/nope", {}, "logs", "not_found", "not found"),
    ("faas/admin/delete/nope", {}, "delete", "not_found", "not found"),
    ("faas/admin/upload/..", {"code_b64": b64(ADD)}, "upload", "invalid_name", "name"),
    ("faas/invoke/a..b", {"args": []}, "invoke", "invalid_name", "name"),
    ("faas/admin/upload/bad name!", {"code_b64": b64(ADD)}, "upload", "invalid_name", "name"),
    ("faas/admin/logs/calc", {"limit": -1}, "logs", "invalid_input", "limit"),
    # Requests anywhere under the request topics are answered, as the original paho-mqtt server did.
    ("faas/invoke", {"args": [1, 2]}, "invoke", "invalid_name", "names no function"),
    ("faas/invoke/calc/extra/levels", {"args": [1, 2]}, "invoke", "invalid_name", "name"),
    ("faas/admin", {}, "", "invalid_input", "no such command"),
])
def test_each_bad_request_goes_to_the_error_topic(server, client, topic, payload, command, code, words):
    upload(client, "calc", ADD)
    request_id = str(uuid.uuid4())
    if isinstance(payload, dict):
        payload = dict(payload, request_id=request_id)
    client.publish(topic, payload)
    expect_id = (lambda b: b["request_id"] == request_id) if isinstance(payload, dict) else (lambda b: True)
    error = client.expect("faas/response/error", where=lambda b: b["topic"] == topic and expect_id(b))
    assert error["command"] == command and words.lower() in error["error"].lower(), error
    assert error["code"] == code, error
    assert error["request_id"]
    # The server keeps serving.
    assert client.call("faas/invoke/calc", {"args": [1, 2]}, "faas/response/invoke/calc")["result"] == 3


def test_the_response_tree_is_never_subscribed(server, client):
    # A message on the response tree is never taken for a request, so no answer or error comes of it.
    upload(client, "calc", ADD)
    client.publish("faas/response/invoke/calc", {"args": [1, 2], "request_id": "not-a-request"})
    client.publish("faas/response/error", {"args": [1, 2], "request_id": "not-a-request"})
    with pytest.raises(AssertionError):
        client.expect("faas/response/error", timeout=1, where=lambda b: b.get("code") is not None)
    with pytest.raises(AssertionError):
        client.expect("faas/response/invoke/calc", timeout=0.5, where=lambda b: "result" in b)


def test_while_stopping_admin_commands_are_refused_and_invocations_wait_for_the_next_start(start_mqtt, client):
    server = start_mqtt()
    upload(client, "nap", "import time\n\ndef main():\n    time.sleep(2)\n    return 'rested'\n")
    client.publish("faas/invoke/nap", {"args": [], "request_id": "n1"})
    time.sleep(0.3)
    server.process.send_signal(signal.SIGTERM)  # the call in flight holds the server up for a while
    time.sleep(0.3)
    client.publish("faas/admin/list", {"request_id": "late"})
    client.publish("faas/invoke/nap", {"args": [], "request_id": "late-call"})
    error = client.expect("faas/response/error", where=lambda b: b["request_id"] == "late")
    assert error["code"] == "shutting_down" and error["command"] == "list", error
    assert client.expect("faas/response/invoke/nap", where=lambda b: b["request_id"] == "n1")["result"] == "rested"
    assert server.stop() == 0
    # Left unacknowledged, the late call stayed with the broker and runs after the restart.
    start_mqtt()
    late = client.expect("faas/response/invoke/nap", timeout=20, where=lambda b: b["request_id"] == "late-call")
    assert late["result"] == "rested"


def test_build_failure_and_payload_limit_go_to_the_error_topic(start_mqtt, client):
    start_mqtt("--max-payload-mib", "0.01")
    client.publish("faas/admin/upload/broken", {"code_b64": b64("def main(:\n"), "request_id": "b1"})
    error = client.expect("faas/response/error", where=lambda b: b["request_id"] == "b1")
    assert "SyntaxError" in error["error"] and error["command"] == "upload" and error["code"] == "build_failed"
    client.publish("faas/invoke/calc", {"args": ["x" * 20000], "request_id": "big"})
    assert "larger than" in client.expect("faas/response/error", where=lambda b: b["topic"] == "faas/invoke/calc")["error"]


def test_mqtt5_response_topic_and_correlation_data(server, broker):
    c5 = Client(broker, version=paho.MQTTv5, topics=("faas/response/#", "my/replies/#"))
    try:
        upload(c5, "calc", ADD)
        properties = Properties(PacketTypes.PUBLISH)
        properties.ResponseTopic = "my/replies/42"
        properties.CorrelationData = b"corr-\x00\x01"
        c5.publish("faas/invoke/calc", {"args": [2, 3]}, properties=properties)
        record = c5.expect("my/replies/42")
        assert record["result"] == 5
        assert c5.last.properties.CorrelationData == b"corr-\x00\x01"
        # Admin commands answer there too, and errors reach both the response topic and the error topic.
        properties.CorrelationData = b"list"
        c5.publish("faas/admin/list", {}, properties=properties)
        assert c5.expect("my/replies/42")["functions"] == ["calc"]
        properties.CorrelationData = b"oops"
        c5.publish("faas/invoke/nope", {}, properties=properties)
        assert "not found" in c5.expect("my/replies/42")["error"]
        assert c5.last.properties.CorrelationData == b"oops"
        assert "not found" in c5.expect("faas/response/error")["error"]
        # A traceparent in a User Property continues that trace.
        traced = Properties(PacketTypes.PUBLISH)
        traced.UserProperty = [("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")]
        c5.publish("faas/invoke/calc", {"args": [1, 1], "request_id": "traced"}, properties=traced)
        record = c5.expect("faas/response/invoke/calc", where=lambda b: b.get("request_id") == "traced")
        assert record["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736" and record["parent_span_id"] == "00f067aa0ba902b7"
        # A Response Topic among the request topics would make the answer a request: refused.
        properties.ResponseTopic = "faas/admin/delete/calc"
        c5.publish("faas/invoke/calc", {"args": [1, 1], "request_id": "reflect"}, properties=properties)
        assert "Response Topic" in c5.expect("faas/response/error", where=lambda b: b["request_id"] == "reflect")["error"]
        assert c5.call("faas/admin/list", {}, "faas/response/admin/list")["functions"] == ["calc"]
    finally:
        c5.close()


def test_server_status_is_retained_with_a_last_will(start_mqtt, broker):
    server = start_mqtt(client_id="status-test")
    watcher = Client(broker, topics=("faas/response/server/#",))
    try:
        assert watcher.expect("faas/response/server/status-test")["status"] == "online"
        assert watcher.last.retain
        assert server.stop(signal.SIGKILL) == -signal.SIGKILL
        assert watcher.expect("faas/response/server/status-test", timeout=90)["status"] == "offline"
    finally:
        watcher.close()


def test_graceful_stop_publishes_offline_and_answers_in_flight(start_mqtt, broker, client):
    server = start_mqtt(client_id="graceful")
    upload(client, "nap", "import time\n\ndef main():\n    time.sleep(1)\n    return 'rested'\n")
    client.publish("faas/invoke/nap", {"args": [], "request_id": "n1"})
    time.sleep(0.3)
    assert server.stop() == 0
    assert client.expect("faas/response/invoke/nap")["result"] == "rested"
    assert client.expect("faas/response/server/graceful", where=lambda b: b["status"] == "offline")


def test_requirements_from_a_wheel_made_now(start_mqtt, client, tmp_path):
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "mqttdep", "3.0", "11")
    start_mqtt(env={"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels)})
    answer = upload(client, "dep", "import mqttdep\n\ndef main():\n    return mqttdep.VALUE\n", "mqttdep==3.0\n")
    assert answer["status"] == "ok"
    assert client.call("faas/invoke/dep", {"args": []}, "faas/response/invoke/dep")["result"] == 11


def test_invocations_sent_while_stopped_are_answered_after_restart(start_mqtt, client, tmp_path):
    server = start_mqtt(client_id="persistent", data_dir=tmp_path / "p")
    upload(client, "calc", ADD)
    assert server.stop() == 0
    for i in range(5):
        client.publish("faas/invoke/calc", {"args": [i, 100], "request_id": f"offline-{i}"})
    start_mqtt(client_id="persistent", data_dir=tmp_path / "p")
    answers = {client.expect("faas/response/invoke/calc", where=lambda b: b["request_id"].startswith("offline-"))
               ["request_id"] for _ in range(5)}
    assert answers == {f"offline-{i}" for i in range(5)}


def test_the_server_reconnects_after_the_broker_restarts(start_mqtt, broker, tmp_path):
    server = start_mqtt(client_id="reconnecting")
    c = Client(broker)
    upload(c, "calc", ADD)
    c.close()
    broker.stop(9)
    time.sleep(1.5)
    broker.start()  # same port; the broker lost every session (persistence false)
    deadline = time.monotonic() + 40
    while "reconnected to" not in server.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "reconnected to" in server.log(), server.log()
    c = Client(broker)
    try:
        assert c.call("faas/invoke/calc", {"args": [4, 5]}, "faas/response/invoke/calc")["result"] == 9
    finally:
        c.close()
    assert server.process.poll() is None


def test_a_shared_group_answers_each_invocation_exactly_once(start_mqtt, client, tmp_path):
    # Each server has its own data dir; the upload reaches both, since admin topics are not shared.
    start_mqtt("--shared-group", "g1", client_id="node-a", data_dir=tmp_path / "a")
    start_mqtt("--shared-group", "g1", client_id="node-b", data_dir=tmp_path / "b")
    client.publish("faas/admin/upload/calc", {"code_b64": b64(ADD), "request_id": "up"})
    for _ in range(2):
        assert client.expect("faas/response/admin/upload/calc")["status"] == "ok"
    total = 1000
    for i in range(total):
        client.client.publish("faas/invoke/calc", json.dumps({"args": [i, 0], "request_id": f"s-{i}"}), qos=1)
    seen = {}
    deadline = time.monotonic() + 60
    while len(seen) < total and time.monotonic() < deadline:
        body = client.expect("faas/response/invoke/calc", timeout=max(1, deadline - time.monotonic()))
        seen[body["request_id"]] = seen.get(body["request_id"], 0) + 1
    time.sleep(0.5)  # any duplicate would have arrived by now
    while not client.messages.empty():
        message = client.messages.get()
        if message.topic == "faas/response/invoke/calc":
            request_id = json.loads(message.payload)["request_id"]
            seen[request_id] = seen.get(request_id, 0) + 1
    assert len(seen) == total and set(seen.values()) == {1}
    # Both nodes answer a logs request, each with the records of its own share: together, every invocation once.
    client.publish("faas/admin/logs/calc", {"limit": 0, "request_id": "all-logs"})
    shares = [client.expect("faas/response/admin/logs/calc", where=lambda b: b["request_id"] == "all-logs")["logs"]
              for _ in range(2)]
    assert all(shares) and sorted(r["request_id"] for share in shares for r in share) == sorted(seen)


def test_broker_credentials(tmp_path, start_mqtt):
    from conftest import Broker, MqttServer
    passwords = tmp_path / "passwords"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), "faas", "s3cret"], check=True)
    # "user root": when the tests run as root, mosquitto would otherwise drop to its own user, which cannot read
    # the password file in pytest's private temporary directory.
    secured = Broker(tmp_path / "secured", f"allow_anonymous false\npassword_file {passwords}\nuser root\n").start()
    try:
        server = MqttServer(secured, tmp_path / "d1", env={"MQTT_USERNAME": "faas", "MQTT_PASSWORD": "s3cret"}).start()
        user = Client(secured, setup=lambda c: c.username_pw_set("faas", "s3cret"))
        upload(user, "calc", ADD)
        assert user.call("faas/invoke/calc", {"args": [1, 2]}, "faas/response/invoke/calc")["result"] == 3
        user.close()
        assert server.stop() == 0
        # Wrong credentials: the server keeps trying, never crashes, and stops cleanly.
        wrong = MqttServer(secured, tmp_path / "d2", "--password", "nope", env={"MQTT_USERNAME": "faas"})
        wrong.start(wait_connected=False)
        time.sleep(2.5)
        assert wrong.process.poll() is None and "cannot connect" in wrong.log()
        assert wrong.stop() == 0
    finally:
        secured.stop()


def test_a_node_joining_later_gets_retained_uploads(start_mqtt, client, tmp_path):
    client.publish("faas/admin/upload/calc", {"code_b64": b64(ADD)}, retain=True)
    late = start_mqtt(client_id="late", data_dir=tmp_path / "late")
    assert client.expect("faas/response/admin/upload/calc")["version"] == 1
    assert client.call("faas/invoke/calc", {"args": [2, 2]}, "faas/response/invoke/calc")["result"] == 4
    # Seen again at the next start: this node has it already, so it is left alone.
    assert late.stop() == 0
    start_mqtt(client_id="late", data_dir=tmp_path / "late")
    with pytest.raises(AssertionError):
        client.expect("faas/response/admin/upload/calc", timeout=1)
    assert client.call("faas/admin/logs/calc", {}, "faas/response/admin/logs/calc")["logs"][0]["result"] == 4
    # Deleting for good: delete, then clear the retained upload (an empty retained message is not a command).
    client.publish("faas/admin/delete/calc", {})
    client.expect("faas/response/admin/delete/calc")
    client.publish("faas/admin/upload/calc", b"", retain=True)
    assert client.call("faas/admin/list", {}, "faas/response/admin/list")["functions"] == []
    with pytest.raises(AssertionError):
        client.expect("faas/response/error", timeout=1)


def test_tls_broker_with_a_ca_made_now(tmp_path):
    from conftest import Broker, MqttServer
    pki = tmp_path / "pki"
    pki.mkdir()

    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=pki, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
            "-keyout", "ca.key", "-out", "ca.crt")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key",
            "-out", "server.csr")
    (pki / "san.ext").write_text("subjectAltName = IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", "san.ext", "-out", "server.crt")
    broker = Broker(tmp_path / "tls", f"allow_anonymous true\ncafile {pki}/ca.crt\ncertfile {pki}/server.crt\n"
                                      f"keyfile {pki}/server.key\nuser root\n").start()
    try:
        tls_uri = f"ssl://127.0.0.1:{broker.port}"
        server = MqttServer(broker, tmp_path / "data", "--ca-file", str(pki / "ca.crt"), uri=tls_uri).start()
        user = Client(broker, setup=lambda c: c.tls_set(ca_certs=str(pki / "ca.crt")))
        upload(user, "calc", ADD)
        assert user.call("faas/invoke/calc", {"args": [5, 6]}, "faas/response/invoke/calc")["result"] == 11
        user.close()
        assert server.stop() == 0
        # Without the CA the broker's certificate is refused: the server keeps retrying.
        untrusted = MqttServer(broker, tmp_path / "data2", uri=tls_uri).start(wait_connected=False)
        # A certificate for 127.0.0.1 does not do for "localhost": the host name is checked too.
        wrong_host = MqttServer(broker, tmp_path / "data3", "--ca-file", str(pki / "ca.crt"), client_id="other",
                                uri=f"ssl://localhost:{broker.port}").start(wait_connected=False)
        time.sleep(2.5)
        for refused in (untrusted, wrong_host):
            assert refused.process.poll() is None and "cannot connect" in refused.log()
            assert refused.stop() == 0
    finally:
        broker.stop()


def test_bad_configuration_exits_with_one_line(tmp_path):
    from conftest import BUILD
    binary = str(BUILD / "frontends" / "mqtt" / "faas-mqtt")
    for args in [["--mqtt-version", "4"], ["--response-topic", "faas/admin/answers"], ["--base-topic", "a/#"],
                 ["--broker", "nonsense://x"], ["--isolation", "vm"]]:
        result = subprocess.run([binary, "--data-dir", str(tmp_path / "d"), *args], capture_output=True, text=True,
                                timeout=30)
        assert result.returncode != 0, args
        assert result.stderr.strip(), args
    # A data dir it cannot make: one line and status 1 (the start unwinds cleanly past the signal thread).
    result = subprocess.run([binary, "--data-dir", "/proc/nonexistent/d"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 1 and "cannot create data dir" in result.stderr, result.stderr


def test_overload_goes_to_the_error_topic(start_mqtt, client):
    start_mqtt("--max-concurrency", "1", "--max-queue", "1")
    upload(client, "nap", "import time\n\ndef main():\n    time.sleep(0.5)\n")
    for i in range(4):
        client.publish("faas/invoke/nap", {"args": [], "request_id": f"o-{i}"})
    error = client.expect("faas/response/error", where=lambda b: b["request_id"].startswith("o-"))
    assert error["command"] == "invoke" and "retry" in error["error"] and error["code"] == "overloaded"
    answered = {client.expect("faas/response/invoke/nap", timeout=10)["request_id"] for _ in range(2)}
    assert len(answered) == 2 and error["request_id"] not in answered


def test_a_broker_speaking_only_3_1_1(start_mqtt, client):
    server = start_mqtt("--mqtt-version", "3.1.1", client_id="v311")
    upload(client, "calc", ADD)
    assert client.call("faas/invoke/calc", {"args": [3, 4]}, "faas/response/invoke/calc")["result"] == 7
    # mosquitto logs each client's protocol: p2 is MQTT 3.1.1, p5 MQTT 5.
    assert "as v311 (p2," in (server.broker.directory / "mosquitto.log").read_text()


def test_retained_admin_commands_other_than_uploads_do_nothing_at_restart(start_mqtt, client, tmp_path):
    server = start_mqtt(client_id="victim-node", data_dir=tmp_path / "node")
    upload(client, "victim", ADD)
    assert client.call("faas/invoke/victim", {"args": [1, 1]}, "faas/response/invoke/victim")["result"] == 2
    client.publish("faas/admin/delete/victim", {"request_id": "d1"}, retain=True)  # runs once, live
    client.expect("faas/response/admin/delete/victim")
    upload(client, "victim", ADD)
    client.publish("faas/invoke/victim", {"args": [5, 5], "request_id": "retained-call"}, retain=True)
    client.expect("faas/response/invoke/victim", where=lambda b: b["request_id"] == "retained-call")
    assert server.stop() == 0
    start_mqtt(client_id="victim-node", data_dir=tmp_path / "node")
    # The retained delete and invoke came again with the subscription, and were ignored.
    assert client.call("faas/admin/list", {}, "faas/response/admin/list")["functions"] == ["victim"]
    with pytest.raises(AssertionError):
        client.expect("faas/response/invoke/victim", timeout=1, where=lambda b: b["request_id"] == "retained-call")
    logs = client.call("faas/admin/logs/victim", {}, "faas/response/admin/logs/victim")["logs"]
    assert [r["request_id"] for r in logs] == ["retained-call"]  # run once, live; not again at the restart
    client.publish("faas/admin/delete/victim", b"", retain=True)
    client.publish("faas/invoke/victim", b"", retain=True)


def test_a_stale_retained_upload_never_rolls_back_a_newer_one(start_mqtt, client, tmp_path):
    server = start_mqtt(client_id="node", data_dir=tmp_path / "node")
    client.publish("faas/admin/upload/calc", {"code_b64": b64(ADD), "request_id": "old"}, retain=True)
    client.expect("faas/response/admin/upload/calc", where=lambda b: b["request_id"] == "old")
    upload(client, "calc", "def main(a, b):\n    return a * b\n")  # a newer version, not retained
    assert server.stop() == 0
    server = start_mqtt(client_id="node", data_dir=tmp_path / "node")
    assert client.call("faas/invoke/calc", {"args": [3, 4]}, "faas/response/invoke/calc")["result"] == 12
    # A retained upload that says it was published later than this node's version does replace it.
    client.publish("faas/admin/upload/calc", {"code_b64": b64(ADD), "published_at": time.time() + 1,
                                              "request_id": "newer"}, retain=True)
    client.expect("faas/response/admin/upload/calc", where=lambda b: b["request_id"] == "newer")
    assert server.stop() == 0
    start_mqtt(client_id="node", data_dir=tmp_path / "node")
    assert client.call("faas/invoke/calc", {"args": [3, 4]}, "faas/response/invoke/calc")["result"] == 7
    client.publish("faas/admin/upload/calc", b"", retain=True)


def test_after_a_broker_restart_the_subscription_comes_before_buffered_answers(start_mqtt, broker):
    broker.stop()
    broker.settings += "log_type all\n"  # the broker's log then shows every SUBSCRIBE and PUBLISH
    broker.start()
    server = start_mqtt("--max-workers", "4", client_id="reconnecting")
    c = Client(broker)
    upload(c, "slow", "import time\n\ndef main(i):\n    time.sleep(0.5)\n    return i\n")
    for i in range(12):
        c.publish("faas/invoke/slow", {"args": [i], "request_id": f"s{i}"})
    # The broker keeps nothing across its kill (persistence false): wait until the server has taken (acknowledged)
    # all twelve, so that calls are running whose answers will have nowhere to go.
    log = broker.directory / "mosquitto.log"

    def taken():
        sent, acked = [], set()
        for line in log.read_text().splitlines():
            if m := re.search(r"Sending PUBLISH to reconnecting \(.*m(\d+), 'faas/invoke/slow'", line):
                sent.append(m.group(1))
            elif m := re.search(r"Received PUBACK from reconnecting \(Mid: (\d+),", line):
                acked.add(m.group(1))
        return len(sent) == 12 and all(mid in acked for mid in sent)

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not taken():
        time.sleep(0.02)
    c.close()
    broker.stop(9)
    time.sleep(1.5)
    restarted_at = len((broker.directory / "mosquitto.log").read_text().splitlines())
    broker.start()  # same port; the broker lost every session (persistence false)
    deadline = time.monotonic() + 40
    while "reconnected to" not in server.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1)
    after = (broker.directory / "mosquitto.log").read_text().splitlines()[restarted_at:]
    ours = [line for line in after if "Received SUBSCRIBE from reconnecting" in line
            or "Received PUBLISH from reconnecting" in line]
    assert ours and "SUBSCRIBE" in ours[0], ours[:3]
    assert any("faas/response/invoke/slow" in line for line in ours), "no buffered answer went out"
    # Every call ran and is on record; and the server takes requests again.
    c = Client(broker)
    try:
        logs = c.call("faas/admin/logs/slow", {}, "faas/response/admin/logs/slow")["logs"]
        assert sorted(r["result"] for r in logs) == list(range(12))
        assert c.call("faas/invoke/slow", {"args": [99]}, "faas/response/invoke/slow")["result"] == 99
    finally:
        c.close()


def test_a_killed_server_answers_every_acknowledged_request_after_restart(start_mqtt, broker, tmp_path):
    """kill -9 under a QoS 1 stream: requests the server had acknowledged sit in its inbox and run (or are
    answered from their records) at the next start; those it had not, the broker sends again."""
    data = tmp_path / "crash"
    server = start_mqtt("--max-workers", "8", client_id="crash", data_dir=data)
    c = Client(broker)
    upload(c, "work", "import time\n\ndef main(i):\n    time.sleep(0.02)\n    return i\n")
    sent = []
    stop_sending = threading.Event()

    def stream():
        next_at = time.monotonic()
        while not stop_sending.is_set():
            request_id = f"k{len(sent)}"
            info = c.client.publish("faas/invoke/work", json.dumps({"args": [len(sent)], "request_id": request_id}),
                                    qos=1)
            sent.append((request_id, info))
            next_at += 1 / 400
            time.sleep(max(0.0, next_at - time.monotonic()))

    sender = threading.Thread(target=stream)
    sender.start()
    try:
        time.sleep(2)
        assert server.stop(signal.SIGKILL) == -signal.SIGKILL
        time.sleep(1)  # requests keep coming while the server is down: the broker keeps them for its session
        server = start_mqtt("--max-workers", "8", client_id="crash", data_dir=data)
        time.sleep(1)
    finally:
        stop_sending.set()
        sender.join()
    for _, info in sent:
        info.wait_for_publish(10)  # acknowledged by the broker: from here on it must be answered
    answered = set()
    deadline = time.monotonic() + 60
    while len(answered) < len(sent) and time.monotonic() < deadline:
        try:
            message = c.messages.get(timeout=1)
        except queue.Empty:
            continue
        if message.topic == "faas/response/invoke/work":
            body = json.loads(message.payload)
            assert body["status"] == "success", body
            answered.add(body["request_id"])
    c.close()
    missing = {request_id for request_id, _ in sent} - answered
    assert not missing, f"{len(missing)} of {len(sent)} acknowledged requests never answered: {sorted(missing)[:10]}"
    log = server.log()
    assert "requests accepted and not answered" in log, log[-3000:]


def test_an_async_call_is_accepted_then_retried_and_its_record_published(server, client):
    flaky = "count = 0\n\ndef main(needed):\n    global count\n    count += 1\n" \
            "    if count < needed:\n        raise ValueError(f'attempt {count} failed')\n    return count\n"
    upload(client, "flaky", flaky)
    settings = client.call("faas/admin/settings/flaky", {"retry_delay": 0.05}, "faas/response/admin/settings/flaky")
    assert settings["settings"]["retry_delay"] == 0.05, settings
    client.publish("faas/invoke/flaky", {"args": [3], "async": True, "request_id": "a-1", "idempotency_key": "k1"})
    topic = "faas/response/invoke/flaky"
    accepted = client.expect(topic, where=lambda b: b.get("status") == "accepted")
    assert accepted["request_id"] == "a-1"
    record = client.expect(topic, where=lambda b: b.get("id", "").startswith(accepted["id"]) and "attempt" in b)
    assert record["status"] == "success" and record["result"] == 3 and record["attempt"] == 3, record
    # The same idempotency key again: accepted with the same id, and nothing runs.
    client.publish("faas/invoke/flaky", {"args": [3], "async": True, "request_id": "a-2", "idempotency_key": "k1"})
    again = client.expect(topic, where=lambda b: b.get("status") == "accepted")
    assert again["id"] == accepted["id"]
    logs = client.call("faas/admin/logs/flaky", {}, "faas/response/admin/logs/flaky")["logs"]
    assert [r["attempt"] for r in logs] == [1, 2, 3]
    client.publish("faas/invoke/flaky", {"args": [3], "async": True, "max_attempts": 0})
    error = client.expect("faas/response/error")
    assert "max_attempts" in error["error"], error


def test_a_generators_chunks_are_published_as_they_come_then_its_record(server, client):
    upload(client, "gen", GATED_GENERATOR)
    gate = Gate()
    try:
        client.publish("faas/invoke/gen", {"args": [gate.port], "request_id": "streamed"})
        first = client.expect("faas/response/invoke/gen", where=lambda b: b.get("request_id") == "streamed")
        assert first["chunk"] == 1 and first["data"] == 1  # the function waits at the gate: it has not ended
        gate.open()
        second = client.expect("faas/response/invoke/gen", where=lambda b: b.get("request_id") == "streamed")
        assert second["chunk"] == 2 and second["data"] == 2 and second["id"] == first["id"]
        record = client.expect("faas/response/invoke/gen", where=lambda b: b.get("request_id") == "streamed")
        assert record["id"] == first["id"] and record["result"] == [1, 2] and record["chunks"] == 2
    finally:
        gate.close()
