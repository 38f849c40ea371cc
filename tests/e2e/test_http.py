"""faas-http end to end, as a user drives it with requests and curl (docs/http.md)."""
import base64
import json
import os
import re
import socket
import stat
import subprocess
import threading
import time
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families
import requests

from make_wheel import make_wheel

TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$")
ADD = "def main(a, b):\n    return a + b\n"
RECORD_KEYS = {"id", "function", "version", "args", "result", "status", "time_start", "time_end", "duration_ms",
               "request_id", "stdout"}


def assert_record(record, function, args):
    """The invocation record (docs/records.md)."""
    assert record["function"] == function
    assert record["args"] == args
    assert uuid.UUID(record["id"]).version == 4
    assert TIME.match(record["time_start"]) and TIME.match(record["time_end"])
    assert record["time_start"] <= record["time_end"]
    assert isinstance(record["duration_ms"], float) and record["duration_ms"] >= 0
    assert isinstance(record["request_id"], str) and record["request_id"]
    assert isinstance(record["stdout"], str)
    if record["status"] == "success":
        assert set(record) == RECORD_KEYS
    else:
        assert record["status"] == "error" and "result" not in record
        assert {"error", "error_type"} <= set(record)


def assert_error(response, status):
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["status"] == "error" and isinstance(body["message"], str) and body["message"]
    return body["message"]


def raw_request(server, data, timeout=10):
    """Sends raw bytes and returns the status code of the answer (0 if the server closed without one)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(data)
        answer = b""
        try:
            while b"\r\n" not in answer:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
        except ConnectionResetError:
            pass
    found = re.match(rb"HTTP/1\.1 (\d{3})", answer)
    return int(found.group(1)) if found else 0


def basic(server):
    return "Basic " + base64.b64encode(f"admin:{server.password}".encode()).decode()


@pytest.fixture(scope="module")
def calc(http_server):
    http_server.upload("calc", ADD)
    return "calc"


# --- authentication --------------------------------------------------------------------------------------------


def test_generated_password_is_kept_in_a_0600_file(start_http, tmp_path):
    server = start_http(password=None, data_dir=tmp_path / "fresh")
    path = tmp_path / "fresh" / "http-password"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(server.password) >= 24
    assert "http-password" in server.log()
    assert server.get("/admin/functions").status_code == 200
    server.stop()
    # The same password after a restart.
    again = start_http(password=None, data_dir=tmp_path / "fresh")
    assert again.password == server.password
    assert again.get("/admin/functions").status_code == 200


def test_password_from_the_environment_writes_no_file(start_http, tmp_path):
    server = start_http(password="s3cret", data_dir=tmp_path / "env")
    assert not (tmp_path / "env" / "http-password").exists()
    assert server.get("/admin/functions", auth=("admin", "s3cret")).status_code == 200


@pytest.mark.parametrize("auth", [None, ("admin", "wrong"), ("root", "test-password")])
def test_every_route_needs_credentials(http_server, auth):
    for method, path in [("GET", "/admin/functions"), ("POST", "/function/calc"), ("GET", "/admin/status"),
                         ("GET", "/admin/gui"), ("GET", "/metrics"), ("GET", "/nowhere"),
                         ("GET", "/admin/functions/calc/settings"), ("PATCH", "/admin/functions/calc/settings")]:
        response = requests.request(method, http_server.url + path, auth=auth, timeout=10)
        assert_error(response, 401)
        assert response.headers["WWW-Authenticate"] == 'Basic realm="Login Required"'


def test_healthz_needs_no_credentials(http_server):
    response = requests.get(http_server.url + "/healthz", timeout=10)
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_public_invoke_opens_only_functions(start_http):
    server = start_http("--public-invoke")
    server.upload("calc", ADD)
    assert requests.post(server.url + "/function/calc", json={"args": [1, 2]}, timeout=10).json()["result"] == 3
    assert requests.get(server.url + "/admin/functions", timeout=10).status_code == 401


def test_a_function_s_public_setting_overrides_the_server_s(start_http):
    server = start_http("--public-invoke")
    server.upload("open", ADD)
    server.upload("closed", ADD, settings={"public": False})
    anonymous = lambda name: requests.post(f"{server.url}/function/{name}", json={"args": [1, 2]}, timeout=10)
    assert anonymous("open").json()["result"] == 3
    assert_error(anonymous("closed"), 401)
    assert server.invoke("closed", 1, 2).json()["result"] == 3
    private = start_http(data_dir=server.data_dir.parent / "private")
    private.upload("calc", ADD)
    assert_error(requests.post(private.url + "/function/calc", json={"args": [1, 2]}, timeout=10), 401)
    private.settings("calc", {"public": True})
    assert requests.post(private.url + "/function/calc", json={"args": [1, 2]}, timeout=10).json()["result"] == 3
    assert_error(requests.get(private.url + "/admin/functions/calc/settings", timeout=10), 401)


# --- versions ---------------------------------------------------------------------------------------------------

def test_versions_rollback_and_pinned_calls(http_server):
    for v in (1, 2, 3):
        assert http_server.upload("versioned", f"def main():\n    return {v}\n")["version"] == v
    versions = http_server.get("/admin/functions/versioned/versions").json()
    assert [v["version"] for v in versions] == [3, 2, 1] and versions[0]["current"] and not versions[1]["current"]
    assert {"created_at", "code_sha256", "has_requirements", "env_id"} <= set(versions[0])

    answer = http_server.post("/admin/functions/versioned/rollback", json={"version": 1})
    assert answer.status_code == 200 and answer.json()["version"] == 1, answer.text
    record = http_server.invoke("versioned").json()
    assert record["result"] == 1 and record["version"] == 1
    assert http_server.get("/admin/functions/versioned").json()["version"] == 1
    pinned = http_server.post("/function/versioned?version=2", json={"args": []}).json()
    assert pinned["result"] == 2 and pinned["version"] == 2 and pinned["function"] == "versioned"

    assert_error(http_server.post("/function/versioned?version=9", json={"args": []}), 404)
    assert_error(http_server.post("/function/versioned?version=two", json={"args": []}), 400)
    assert_error(http_server.post("/admin/functions/versioned/rollback", json={"version": 9}), 404)
    assert_error(http_server.post("/admin/functions/versioned/rollback", json={"version": "1"}), 400)
    assert_error(http_server.post("/admin/functions/versioned/rollback", data="{"), 400)
    assert_error(http_server.get("/admin/functions/versioned/rollback"), 405)
    assert_error(http_server.get("/admin/functions/nope/versions"), 404)

    assert http_server.upload("versioned", "def main():\n    return 4\n")["version"] == 4
    logs = http_server.get("/admin/logs/versioned").json()
    assert [(r["result"], r["version"]) for r in logs] == [(1, 1), (2, 2)]
    assert http_server.invoke("versioned").json()["version"] == 4


# --- settings ---------------------------------------------------------------------------------------------------

# env, secrets and memory limits reach functions through their worker processes (docs/configuration.md).
IN_PROCESS = os.environ.get("FAAS_ISOLATION") == "inprocess"


def test_settings_changed_without_an_upload_take_effect_on_the_next_call(http_server):
    http_server.upload("tunable", "import os, time\n"
                       "def main(seconds=0, megabytes=0):\n"
                       "    time.sleep(seconds)\n"
                       "    hoard = bytearray(megabytes << 20)\n"
                       "    return os.environ.get('MODE')\n")
    defaults = http_server.settings("tunable")
    assert defaults["timeout"] == 5 and "timeout" in defaults["defaults"] and defaults["env"] == {}
    assert http_server.invoke("tunable", 0.5).json()["status"] == "success"

    view = http_server.settings("tunable", {"timeout": 0.2, "memory_mb": 200, "env": {"MODE": "fast"}})
    assert view["timeout"] == 0.2 and view["memory_mb"] == 200 and "timeout" not in view["defaults"]
    late = http_server.invoke("tunable", 0.5).json()
    assert late["error_type"] == "Timeout" and "0.2 s" in late["error"], late
    if not IN_PROCESS:
        assert http_server.invoke("tunable").json()["result"] == "fast"
        big = http_server.invoke("tunable", 0, 400).json()
        assert big["error_type"] == "MemoryLimit", big
    assert http_server.get("/admin/functions/tunable").json()["version"] == 1  # no new version of the code

    view = http_server.settings("tunable", {"timeout": None, "memory_mb": None, "env": {"MODE": None},
                                            "schedule": [{"cron": "@hourly", "args": [0]}]})
    assert view["timeout"] == 5 and view["env"] == {}
    assert view["schedule"] == [{"cron": "@hourly", "args": [0]}]
    assert http_server.invoke("tunable", 0.5, 100).json()["result"] is None


@pytest.mark.parametrize("body, words", [
    ('{"timeout": -1}', "timeout"), ('{"memory_mb": "lots"}', "memory_mb"), ('{"network": "wifi"}', "network"),
    ('{"env": {"LD_PRELOAD": "/x.so"}}', "reserved"), ('{"colour": "blue"}', "unknown setting"),
    ('{"min_workers": 3, "max_workers": 2}', "min_workers"), ("[1]", "JSON object"), ("{", "JSON object"),
    ('{"schedule": [{"cron": "99 * * * *"}]}', "minute"), ('{"schedule": "@daily"}', "schedule"),
])
def test_bad_settings_are_a_400_that_changes_nothing(http_server, calc, body, words):
    before = http_server.settings("calc")
    response = http_server.patch("/admin/functions/calc/settings", data=body,
                                 headers={"Content-Type": "application/json"})
    assert_error(response, 400)
    assert words in response.json()["message"]
    assert http_server.settings("calc") == before


def test_settings_of_an_unknown_function_or_with_a_wrong_method(http_server):
    assert_error(http_server.get("/admin/functions/nope/settings"), 404)
    assert_error(http_server.patch("/admin/functions/nope/settings", json={"timeout": 1}), 404)
    assert_error(http_server.post("/admin/functions/calc/settings", json={}), 405)
    response = http_server.post("/admin/upload", json={"name": "x", "code_b64": base64.b64encode(ADD.encode()).decode(),
                                                       "settings": {"timeout": "soon"}})
    assert_error(response, 400)
    assert_error(http_server.get("/admin/functions/x"), 404)  # nothing was built


@pytest.mark.skipif(IN_PROCESS, reason="env reaches functions through their workers")
def test_a_json_upload_carries_settings_its_import_already_sees(http_server):
    response = http_server.post("/admin/upload", json={"name": "configured", "code_b64": base64.b64encode(
        b"import os\nGREETING = os.environ['GREETING']\ndef main():\n    return GREETING\n").decode(),
        "settings": {"env": {"GREETING": "hello"}, "max_concurrency": 3}})
    assert response.status_code == 200, response.text
    assert http_server.invoke("configured").json()["result"] == "hello"
    assert http_server.settings("configured")["max_concurrency"] == 3


# --- functions and invocations ---------------------------------------------------------------------------------


def test_multipart_upload_then_invoke(http_server):
    body = http_server.upload("adder", ADD)
    assert body["status"] == "success" and body["function"] == "adder" and body["message"]
    response = http_server.invoke("adder", 10, 20)
    assert response.status_code == 200
    record = response.json()
    assert_record(record, "adder", [10, 20])
    assert record["result"] == 30


def test_curl_upload_names_the_function_after_its_file(http_server, tmp_path):
    code = tmp_path / "greet.py"
    code.write_text("def main(name):\n    print('hi')\n    return 'hello ' + name\n")
    out = subprocess.run(["curl", "-sS", "-u", f"admin:{http_server.password}", "-F", f"code=@{code}",
                          http_server.url + "/admin/upload"], capture_output=True, text=True, check=True).stdout
    assert json.loads(out)["function"] == "greet"
    out = subprocess.run(["curl", "-sS", "-u", f"admin:{http_server.password}", "-H", "Content-Type: application/json",
                          "-d", '{"args": ["bob"], "request_id": "r-1"}', http_server.url + "/function/greet"],
                         capture_output=True, text=True, check=True).stdout
    record = json.loads(out)
    assert record["result"] == "hello bob" and record["request_id"] == "r-1" and record["stdout"] == "hi\n"


def test_json_upload_with_base64_fields(http_server):
    response = http_server.post("/admin/upload", json={
        "name": "b64", "code_b64": base64.b64encode(b"def main(x):\n    return x * 2\n").decode()})
    assert response.status_code == 200, response.text
    assert http_server.invoke("b64", 21).json()["result"] == 42
    bad = http_server.post("/admin/upload", json={"name": "b64", "code_b64": "not base64!"})
    assert "base64" in assert_error(bad, 400)


@pytest.mark.parametrize("fields, named", [
    ({"code_b64": "not base64!"}, "code_b64"),
    ({"code_b64": "YWJj!"}, "code_b64"),
    ({"code_b64": "YQ"}, "code_b64"),           # no padding
    ({"code_b64": "YW=j"}, "code_b64"),         # padding inside
    ({"code_b64": "YW-j"}, "code_b64"),         # the URL-safe alphabet is not base64
    ({"code_b64": "===="}, "code_b64"),
    ({"code_b64": 12}, "code_b64"),
    ({"code_b64": "ZGVmIG1haW4oKTogcGFzcwo=", "req_b64": "%%%%"}, "req_b64"),
    ({}, "code_b64"),
])
def test_json_upload_with_bad_base64_is_a_400_naming_the_field(http_server, fields, named):
    response = http_server.post("/admin/upload", json={"name": "b64bad", **fields})
    assert named in assert_error(response, 400)
    assert response.json()["code"] == "invalid_input"
    assert_error(http_server.get("/admin/functions/b64bad"), 404)  # nothing was made


def test_code_that_is_not_text_is_a_build_failure_with_a_message(http_server):
    for code in [b"\xff\xfe\x00", b"\x00", b"def main():\n    return '\xff'\n"]:
        response = http_server.post("/admin/upload", json={"name": "binary", "code_b64": base64.b64encode(code).decode()})
        assert "Error" in assert_error(response, 500)
        assert response.json()["code"] == "build_failed"


def test_kwargs_and_big_ints(http_server):
    http_server.upload("kw", "def main(a, scale=1):\n    return a * scale\n")
    record = http_server.post("/function/kw", data='{"args": [12345678901234567890123], "kwargs": {"scale": 2}}').json()
    assert record["result"] == 24691357802469135780246


def test_a_raising_function_answers_200_with_an_error_record(http_server):
    http_server.upload("div", "def main(a, b):\n    return a / b\n")
    response = http_server.invoke("div", 1, 0)
    assert response.status_code == 200
    record = response.json()
    assert_record(record, "div", [1, 0])
    assert record["error_type"] == "ZeroDivisionError" and "division by zero" in record["error"]
    assert "Traceback" in record["traceback"]


def test_unknown_function_wrong_method_unknown_route(http_server, calc):
    assert "nope" in assert_error(http_server.invoke("nope", 1), 404)
    response = http_server.get("/function/calc")
    assert_error(response, 405)
    assert response.headers["Allow"] == "POST"
    assert_error(http_server.delete("/admin/status"), 405)
    assert_error(http_server.get("/admin/nothing"), 404)
    assert_error(http_server.get("/function/calc/extra"), 404)


def test_list_and_delete(http_server):
    http_server.upload("doomed", ADD)
    functions = http_server.get("/admin/functions").json()
    meta = functions["doomed"]
    assert meta["name"] == "doomed" and meta["version"] == 1 and meta["has_requirements"] is False
    assert TIME.match(meta["created_at"]) and TIME.match(meta["updated_at"])
    response = http_server.delete("/admin/functions/doomed")
    assert response.status_code == 200 and response.json()["status"] == "success"
    assert "doomed" not in http_server.get("/admin/functions").json()
    assert_error(http_server.delete("/admin/functions/doomed"), 404)
    assert_error(http_server.invoke("doomed", 1, 2), 404)


def test_logs_limit(http_server):
    http_server.upload("logged", "def main(i):\n    return i\n")
    for i in range(5):
        http_server.invoke("logged", i)
    everything = http_server.get("/admin/logs/logged").json()
    assert [r["result"] for r in everything] == [0, 1, 2, 3, 4]
    for record in everything:
        assert_record(record, "logged", [record["result"]])
    assert [r["result"] for r in http_server.get("/admin/logs/logged?limit=2").json()] == [3, 4]
    assert len(http_server.get("/admin/logs/logged?limit=0").json()) == 5
    assert_error(http_server.get("/admin/logs/logged?limit=-1"), 400)
    assert_error(http_server.get("/admin/logs/logged?limit=abc"), 400)
    assert_error(http_server.get("/admin/logs/unknown"), 404)


def test_status_has_the_fields_of_both_original_servers(http_server):
    status = http_server.get("/admin/status").json()
    assert status["status"] == "ok"  # as the original Flask server; faas-mqtt says "running" like its original
    for key in ["uptime", "cpu_percent", "ram_percent", "loaded_functions", "timestamp", "system_memory_info"]:
        assert key in status
    assert status["cpu_usage_absolute"]["process_milicpu"] >= 0
    assert status["memory_usage_absolute"]["process_rss_mb"] > 0
    assert TIME.match(status["timestamp"])


def test_reupload_with_a_syntax_error_keeps_the_old_version(http_server):
    http_server.upload("stable", ADD)
    response = http_server.post("/admin/upload", files={"code": ("func.py", "def main(:\n")}, data={"name": "stable"})
    message = assert_error(response, 500)
    assert "SyntaxError" in message and "def main(:" in message  # the new code's line, not the old one's
    assert http_server.invoke("stable", 1, 2).json()["result"] == 3


def test_requirements_from_a_wheel_made_now(start_http, tmp_path):
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "tinydep", "1.0", "7")
    server = start_http(env={"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels)})
    server.upload("withdep", "import tinydep\n\ndef main():\n    return [tinydep.VERSION, tinydep.VALUE]\n",
                  requirements="tinydep==1.0\n")
    assert server.invoke("withdep").json()["result"] == ["1.0", 7]
    assert server.get("/admin/functions").json()["withdep"]["has_requirements"] is True
    # A missing package fails with pip's words, and the function keeps its version.
    response = server.post("/admin/upload", files={"code": ("func.py", ADD), "requirements": ("r.txt", "nothere\n")},
                           data={"name": "withdep"})
    assert "nothere" in assert_error(response, 500)
    assert server.invoke("withdep").json()["result"] == ["1.0", 7]


def test_a_pip_upload_does_not_hold_up_invocations(start_http, tmp_path):
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "slowdep", "2.0")
    server = start_http(env={"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels)})
    server.upload("calc", ADD)
    done = threading.Event()
    answered_during_upload = []

    def invoke_until_done():
        session = requests.Session()
        while not done.is_set():
            response = session.post(server.url + "/function/calc", json={"args": [1, 1]}, auth=server.auth, timeout=5)
            assert response.status_code == 200
            answered_during_upload.append(time.monotonic())

    thread = threading.Thread(target=invoke_until_done)
    thread.start()
    started = time.monotonic()
    server.upload("dep", "import slowdep\n\ndef main():\n    return slowdep.VERSION\n", requirements="slowdep\n")
    upload_seconds = time.monotonic() - started
    done.set()
    thread.join()
    assert upload_seconds > 0.3  # pip ran
    assert len(answered_during_upload) > 20, f"{len(answered_during_upload)} answers in {upload_seconds:.2f}s"


def test_restart_keeps_functions_and_logs(start_http, tmp_path):
    server = start_http(data_dir=tmp_path / "kept")
    server.upload("calc", ADD)
    first = server.invoke("calc", 2, 3).json()
    assert server.stop() == 0
    again = start_http(data_dir=tmp_path / "kept")
    assert "calc" in again.get("/admin/functions").json()
    assert again.get("/admin/logs/calc").json() == [first]
    assert again.invoke("calc", 4, 5).json()["result"] == 9


def test_async_invocation(http_server):
    http_server.upload("slow", "import time\n\ndef main(x):\n    time.sleep(0.5)\n    return x\n")
    response = http_server.post("/function/slow", json={"args": [7], "request_id": "async-1"},
                                headers={"X-Faas-Async": "true"})
    assert response.status_code == 202
    accepted = response.json()
    assert accepted["status"] == "accepted" and accepted["request_id"] == "async-1"
    location = response.headers["Location"]
    assert location == "/admin/invocations/" + accepted["id"]
    pending = http_server.get(location)
    assert pending.status_code == 202 and pending.json()["status"] == "pending"
    deadline = time.monotonic() + 10
    while (answer := http_server.get(location)).status_code == 202 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert answer.status_code == 200
    record = answer.json()
    assert record.pop("attempt") == 1  # an asynchronous call's records say which attempt they are
    # Its attempts share one trace, as spans under the call's acceptance.
    assert len(record.pop("trace_id")) == 32 and len(record.pop("span_id")) == 16
    assert len(record.pop("parent_span_id")) == 16
    assert_record(record, "slow", [7])
    assert record["id"] == accepted["id"] and record["result"] == 7 and record["request_id"] == "async-1"
    assert_error(http_server.get("/admin/invocations/" + str(uuid.uuid4())), 404)
    assert_error(http_server.post("/function/nope", json={"args": []}, headers={"X-Faas-Async": "true"}), 404)


def test_metrics_are_prometheus_text(http_server, calc):
    http_server.invoke("calc", 1, 2)
    response = http_server.get("/metrics")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = {family.name: family for family in text_string_to_metric_families(response.text)}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    assert samples[("faas_invocations_total", (("function", "calc"), ("status", "success")))] >= 1
    assert samples[("faas_invocation_duration_seconds_bucket", (("function", "calc"), ("le", "+Inf")))] >= 1
    assert families["faas_invocation_duration_seconds"].type == "histogram"
    assert families["faas_invocations"].type == "counter"
    for gauge in ("faas_invocations_in_flight", "faas_invocations_queued", "faas_workers", "faas_http_connections",
                  "faas_process_resident_memory_bytes"):
        assert families[gauge].type == "gauge", gauge
    assert samples[("faas_process_resident_memory_bytes", ())] > 1e6


def test_stats_count_each_functions_calls_errors_and_durations_of_the_last_hour(start_http):
    server = start_http("--isolation", "inprocess")
    server.upload("add", ADD)
    server.upload("boom", "def main():\n    raise ValueError('no')\n")
    for i in range(5):
        server.invoke("add", i, 1)
    server.invoke("boom")
    server.post("/function/add", json={"args": [1, 2]}, headers={"X-Faas-Async": "true"})  # counted too
    deadline = time.monotonic() + 10
    while True:
        stats = server.get("/admin/stats").json()
        if stats["functions"]["add"]["hour"]["calls"] == 6 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    add, boom = stats["functions"]["add"], stats["functions"]["boom"]
    assert len(add["minutes"]) == 60 and len(stats["server"]) == 60
    assert add["minutes"][-1]["minute"] == stats["minute"]
    assert add["hour"]["calls"] == 6 and add["hour"]["errors"] == 0 and add["successes"] == 6
    assert 0 < add["hour"]["p50_ms"] <= add["hour"]["p95_ms"] <= add["hour"]["p99_ms"] < 1000
    assert sum(m["calls"] for m in add["minutes"]) == 6
    assert boom["hour"] == {**boom["hour"], "calls": 1, "errors": 1}
    server.delete("/admin/functions/boom")
    assert "boom" not in server.get("/admin/stats").json()["functions"]


def test_root_redirects_to_the_dashboard(http_server):
    response = http_server.get("/", allow_redirects=False)
    assert response.status_code == 302 and response.headers["Location"] == "/admin/gui"
    page = http_server.get("/admin/gui")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "<html" in page.text.lower() and "libfaas" in page.text


# --- hostile input, each while another client keeps being served ---------------------------------------------------


@pytest.fixture
def parallel_client(http_server, calc):
    """A client invoking calc without pause for the length of a test; asserts that every call was answered."""
    stop = threading.Event()
    results = {"ok": 0, "failed": []}

    def run():
        session = requests.Session()
        while not stop.is_set():
            try:
                response = session.post(http_server.url + "/function/calc", json={"args": [2, 2]},
                                        auth=http_server.auth, timeout=10)
                if response.status_code == 200 and response.json()["result"] == 4:
                    results["ok"] += 1
                else:
                    results["failed"].append(response.status_code)
            except requests.RequestException as e:
                results["failed"].append(repr(e))

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.1)
    yield results
    before = results["ok"]
    time.sleep(0.2)
    stop.set()
    thread.join()
    assert results["failed"] == []
    assert results["ok"] > before, "the parallel client stopped being served"


def test_malformed_json_and_args_not_a_list(http_server, parallel_client):
    assert "JSON" in assert_error(http_server.post("/function/calc", data="{not json"), 400)
    assert "args" in assert_error(http_server.post("/function/calc", json={"args": {"a": 1}}), 400)
    assert_error(http_server.post("/function/calc", json=[1, 2]), 400)
    assert_error(http_server.post("/function/calc", json={"args": [1], "kwargs": [1]}), 400)
    assert_error(http_server.post("/admin/upload", data="{]", headers={"Content-Type": "application/json"}), 400)
    assert_error(http_server.post("/admin/upload", data="x", headers={"Content-Type": "text/plain"}), 400)


def test_truncated_and_malformed_multipart(http_server, parallel_client):
    boundary = "XyZ"
    whole = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\ncut\r\n"
             f"--{boundary}\r\nContent-Disposition: form-data; name=\"code\"; filename=\"f.py\"\r\n\r\n"
             f"{ADD}\r\n--{boundary}--\r\n")
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    for body in [whole[:40], whole[:-30], whole.replace("Content-Disposition", "X-Nothing")]:
        message = assert_error(http_server.post("/admin/upload", data=body, headers=headers), 400)
        assert "multipart" in message
    assert_error(http_server.post("/admin/upload", data=whole, headers={"Content-Type": "multipart/form-data"}), 400)
    no_code = whole.replace('name="code"', 'name="other"')
    assert "code" in assert_error(http_server.post("/admin/upload", data=no_code, headers=headers), 400)
    assert http_server.post("/admin/upload", data=whole, headers=headers).status_code == 200


def test_oversized_bodies_get_413(http_server, parallel_client):
    big = b"x" * (20 * 1024 * 1024)
    assert_error(http_server.post("/function/calc", data=big), 413)
    assert_error(http_server.post("/admin/upload", data=big, headers={"Content-Type": "application/json"}), 413)
    # curl sends "Expect: 100-continue" and gets the answer before sending the body.
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-u", f"admin:{http_server.password}",
                          "-H", "Content-Type: application/json", "--data-binary", "@-", http_server.url + "/function/calc"],
                         input=big, capture_output=True, check=True).stdout
    assert out == b"413"


def test_a_100_kb_header_gets_431(http_server, parallel_client):
    response = http_server.get("/admin/functions", headers={"X-Padding": "a" * 100_000})
    assert_error(response, 431)


def test_non_utf8_and_dot_dot_paths(http_server, parallel_client):
    auth = basic(http_server).encode()
    for method, target in [(b"POST", b"/function/\xff\xfe"), (b"POST", b"/function/%FF%FE"),
                           (b"POST", b"/function/.."), (b"POST", b"/function/..%2F..%2Fetc"), (b"POST", b"/function/%zz"),
                           (b"GET", b"/admin/logs/.."), (b"GET", b"/admin/logs/%2e%2e%2fetc"),
                           (b"DELETE", b"/admin/functions/a%2Fb"), (b"GET", b"/admin/functions/\xc3\x28")]:
        status = raw_request(http_server, method + b" " + target + b" HTTP/1.1\r\nHost: x\r\nAuthorization: " +
                             auth + b"\r\nContent-Length: 2\r\n\r\n{}")
        assert status == 400, target
    out = subprocess.run(["curl", "-s", "--path-as-is", "-u", f"admin:{http_server.password}", "-X", "DELETE",
                          http_server.url + "/admin/functions/.."], capture_output=True, text=True).stdout
    assert json.loads(out)["status"] == "error"
    for name in ["../evil", "a/b", "x" * 65, ".hidden", "a..b"]:
        response = http_server.post("/admin/upload", files={"code": ("func.py", ADD)}, data={"name": name})
        assert_error(response, 400)
    assert not any(p.name == "evil" for p in http_server.data_dir.parent.rglob("evil"))


def test_a_slow_client_gets_408_and_blocks_nobody(http_server, parallel_client):
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", http_server.port), timeout=10) as sock:
        sock.sendall(b"POST /function/calc HTTP/1.1\r\nHost: x\r\n")
        answer = b""
        for _ in range(50):  # a header line now and then, never finishing
            time.sleep(0.1)
            try:
                sock.sendall(b"X-Slow: 1\r\n")
            except OSError:
                break
        sock.settimeout(5)
        try:
            while chunk := sock.recv(4096):
                answer += chunk
        except OSError:
            pass
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    assert time.monotonic() - started < 6
    # An idle connection is closed without an answer.
    with socket.create_connection(("127.0.0.1", http_server.port), timeout=10) as sock:
        assert sock.recv(100) == b""


def test_overload_gets_503_with_retry_after(start_http):
    server = start_http("--max-concurrency", "1", "--max-queue", "1")
    server.upload("nap", "import time\n\ndef main():\n    time.sleep(1)\n")
    async_call = {"headers": {"X-Faas-Async": "true"}, "json": {"args": []}}
    assert [server.post("/function/nap", **async_call).status_code for _ in range(2)] == [202, 202]
    response = server.post("/function/nap", **async_call)
    assert "retry" in assert_error(response, 503)
    assert response.headers["Retry-After"] == "1"
    assert_error(server.invoke("nap"), 503)


def test_connections_beyond_the_cap_get_503(start_http):
    server = start_http("--max-connections", "2")
    # Two clients that have completed a request hold their places.
    talkers = []
    for _ in range(2):
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        talkers.append(sock)
    assert raw_request(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") == 503
    for sock in talkers:
        sock.close()
    time.sleep(0.2)
    assert server.get("/healthz").status_code == 200


def test_idle_connections_make_room_for_clients_that_talk(start_http):
    server = start_http("--max-connections", "2")
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(2)]
    time.sleep(0.2)
    assert raw_request(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") == 200
    assert idle[0].recv(10) == b""  # the oldest idle connection was closed to make room
    for sock in idle:
        sock.close()


def test_a_thousand_idle_sockets_lock_nobody_out(start_http):
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    server = start_http()
    session = requests.Session()
    session.auth = ("admin", server.password)
    server.upload("calc", ADD)
    idle = []
    try:
        for _ in range(1000):
            idle.append(socket.create_connection(("127.0.0.1", server.port)))
        deadline = time.monotonic() + 3
        served = 0
        while time.monotonic() < deadline:
            assert requests.get(server.url + "/healthz", timeout=5).status_code == 200
            answer = session.post(server.url + "/function/calc", json={"args": [served, 1]}, timeout=5)
            assert answer.status_code == 200 and answer.json()["result"] == served + 1
            served += 1
        assert served > 10
    finally:
        for sock in idle:
            sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def read_all(server, data, timeout=5):
    """Sends raw bytes and reads until the server closes: every status line it answered with."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(data)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except (ConnectionResetError, socket.timeout):
            pass
    return [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)]


@pytest.mark.parametrize("coding, status", [
    ("gzip", 400), ("xchunked", 400), ("chunked, identity", 400), ("identity", 400), ("gzip, chunked", 501),
])
def test_transfer_encoding_other_than_a_final_chunked_is_refused(http_server, coding, status):
    smuggled = b"GET /admin/functions HTTP/1.1\r\nHost: x\r\nAuthorization: " + basic(http_server).encode() + b"\r\n\r\n"
    request = (f"POST /function/calc HTTP/1.1\r\nHost: x\r\nAuthorization: {basic(http_server)}\r\n"
               f"Transfer-Encoding: {coding}\r\n\r\n").encode() + smuggled
    assert read_all(http_server, request) == [status]  # and the body is never read as a second request


@pytest.mark.parametrize("head", [
    b"GET /healthz HTTP/1.1\r\n\r\n",                              # HTTP/1.1 without Host
    b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",       # two Hosts
    b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Folded: one\r\n two\r\n\r\n",  # obsolete line folding
    b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Folded: one\r\n\ttwo\r\n\r\n",
])
def test_ambiguous_headers_get_400_and_a_close(http_server, head):
    assert read_all(http_server, head + b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n") == [400]


def test_http_1_0_needs_no_host(http_server):
    assert raw_request(http_server, b"GET /healthz HTTP/1.0\r\n\r\n") == 200


def test_the_dashboard_cannot_be_framed(http_server):
    response = http_server.get("/admin/gui")
    assert response.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_graceful_shutdown_finishes_in_flight_calls(start_http, tmp_path):
    server = start_http(data_dir=tmp_path / "graceful")
    server.upload("nap", "import time\n\ndef main():\n    time.sleep(1)\n    return 'rested'\n")
    answers = []
    thread = threading.Thread(target=lambda: answers.append(server.invoke("nap")))
    thread.start()
    time.sleep(0.3)
    assert server.stop() == 0
    thread.join()
    assert answers[0].status_code == 200 and answers[0].json()["result"] == "rested"
    assert "stopped" in server.log()
    assert '"POST /function/nap" 200' in server.log()  # the access log
    again = start_http(data_dir=tmp_path / "graceful")
    assert [r["result"] for r in again.get("/admin/logs/nap").json()] == ["rested"]


def test_bad_configuration_exits_with_one_line(tmp_path):
    from conftest import BUILD
    binary = str(BUILD / "frontends" / "http" / "faas-http")
    for args in [["--isolation", "docker"], ["--port", "99999"], ["--host", "not-an-ip", "--port", "0"]]:
        result = subprocess.run([binary, "--data-dir", str(tmp_path / "d"), *args], capture_output=True, text=True,
                                env={**os.environ, "FAAS_HTTP_PASSWORD": "x"}, timeout=30)
        assert result.returncode != 0, args
        assert result.stderr.strip(), args


def test_writes_from_another_origin_are_refused(http_server, calc):
    evil = {"Origin": "http://evil.example"}
    assert_error(http_server.post("/function/calc", json={"args": [1, 2]}, headers=evil), 403)
    assert_error(http_server.post("/admin/upload", files={"code": ("x.py", ADD)}, headers=evil), 403)
    assert_error(http_server.delete("/admin/functions/calc", headers=evil), 403)
    assert_error(http_server.post("/function/calc", json={"args": [1, 2]}, headers={"Origin": "null"}), 403)
    same = {"Origin": f"http://127.0.0.1:{http_server.port}"}
    assert http_server.post("/function/calc", json={"args": [1, 2]}, headers=same).json()["result"] == 3
    assert http_server.get("/admin/functions", headers=evil).status_code == 200  # reads are not writes

    # A page on a rebound name sends its own host as Host: that proves nothing.
    rebound = {"Origin": f"http://evil.example:{http_server.port}", "Host": f"evil.example:{http_server.port}"}
    assert_error(http_server.post("/function/calc", json={"args": [1, 2]}, headers=rebound), 403)
    localhost = {"Origin": f"http://localhost:{http_server.port}"}
    assert http_server.post("/function/calc", json={"args": [1, 2]}, headers=localhost).status_code == 200


def test_public_origins_may_write(start_http):
    server = start_http("--public-origin", "https://FaaS.example.com/")
    server.upload("calc", ADD)
    allowed = {"Origin": "https://faas.example.com"}
    assert server.post("/function/calc", json={"args": [1, 2]}, headers=allowed).json()["result"] == 3
    assert_error(server.post("/function/calc", json={"args": [1, 2]}, headers={"Origin": "https://other.example.com"}), 403)

@pytest.mark.parametrize("line", [
    "-r /etc/shadow", "--index-url https://evil.example/simple", "-i https://evil.example/simple",
    "--extra-index-url https://evil.example", "-e .", "./local-folder", "/tmp/pkg", "pkg @ file:///etc/passwd",
    "https://evil.example/pkg.whl",
])
def test_requirements_that_steer_pip_are_refused_naming_the_line(http_server, line):
    response = http_server.post("/admin/upload", files={"code": ("f.py", ADD), "requirements": ("r.txt", f"six\n{line}\n")},
                                data={"name": "steer"})
    message = assert_error(response, 400)
    assert "line 2" in message and response.json()["code"] == "invalid_input"
    assert "root:" not in message  # nothing was read from the named file
    assert_error(http_server.get("/admin/functions/steer"), 404)


def test_what_a_function_writes_to_fd_2_is_its_output_not_the_server_log(start_http):
    server = start_http("--isolation", "process")  # in-process execution cannot capture file descriptors
    server.upload("noisy", "import os\n\ndef main():\n"
                           "    os.write(2, b'GET /admin/forged HTTP/1.1 200\\n' * 1000)\n"
                           "    return 'done'\n")
    record = server.invoke("noisy").json()
    assert record["result"] == "done"
    assert record["stdout"] == "GET /admin/forged HTTP/1.1 200\n" * 1000  # all of it, under the 64 KiB cap
    assert "/admin/forged" not in server.log()


def test_the_data_dir_is_private_and_lock_files_do_not_linger(start_http, tmp_path):
    server = start_http(data_dir=tmp_path / "private")
    assert stat.S_IMODE(os.stat(tmp_path / "private").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tmp_path / "private" / "faas.db").st_mode) == 0o600
    server.upload("calc", ADD)
    assert_error(server.delete("/admin/functions/never-was"), 404)
    assert server.delete("/admin/functions/calc").status_code == 200
    functions = tmp_path / "private" / "functions"
    assert [p.name for p in functions.iterdir() if p.name.endswith(".lock")] == []
    # A lock path is never followed through a link planted there.
    outside = tmp_path / "outside-target"
    (functions / ".victim.lock").symlink_to(outside)
    server.delete("/admin/functions/victim")
    assert not outside.exists()


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MiB tmpfs for a data dir, so that a test can fill it (needs root, as CI runs)."""
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (not root?)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_never_answers_success_without_a_record(start_http, small_disk):
    server = start_http(data_dir=small_disk / "data")
    server.upload("echo", "def main(x):\n    return x\n")
    # The test fills the disk itself: functions cannot write outside their sandbox.
    ballast = small_disk / "ballast"
    with open(ballast, "wb") as f:
        try:
            for _ in range(1024):
                f.write(b"x" * 65536)
                f.flush()
        except OSError:
            pass
    answered, refused = [], 0
    for i in range(60):
        response = server.invoke("echo", i)
        if response.status_code == 200:
            answered.append(response.json()["id"])
        else:
            assert response.status_code == 503, response.text
            assert response.json()["code"] == "store_unavailable" and response.headers["Retry-After"]
            refused += 1
    assert refused > 0, "the disk never filled up"
    assert server.get("/admin/functions").status_code == 200  # reads go on
    late = server.post("/admin/upload", files={"code": ("late.py", ADD)}, data={"name": "late"})
    assert late.status_code == 503 and late.json()["code"] == "store_unavailable", late.text
    # Every success that was answered is on record.
    for invocation_id in answered:
        assert server.get(f"/admin/invocations/{invocation_id}").status_code == 200, invocation_id
    # Space comes back: the server recovers by itself.
    ballast.unlink()
    deadline = time.monotonic() + 10
    while (response := server.invoke("echo", "back")).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert response.status_code == 200 and response.json()["result"] == "back"
    assert server.get(f"/admin/invocations/{response.json()['id']}").status_code == 200
    assert server.stop() == 0


TRACED = """
import faas_context

def main():
    return {"traceparent": faas_context.traceparent(), "invocation_id": faas_context.invocation_id()}
"""


@pytest.mark.parametrize("isolation", ["process", "inprocess"])
def test_a_traceparent_sent_in_comes_back_in_the_record_and_reaches_the_function(start_http, isolation):
    server = start_http("--isolation", isolation, "--log-level", "info")  # info: the access log
    server.upload("traced", TRACED)
    trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    record = server.invoke("traced", headers={"traceparent": f"00-{trace_id}-{parent}-01"}).json()
    assert record["trace_id"] == trace_id and record["parent_span_id"] == parent, record
    assert re.fullmatch("[0-9a-f]{16}", record["span_id"]) and record["span_id"] != parent
    # The function sees its own span as the parent of what it calls, in the same trace.
    assert record["result"] == {"traceparent": f"00-{trace_id}-{record['span_id']}-01", "invocation_id": record["id"]}
    deadline = time.monotonic() + 5  # the log is flushed every second
    while f"trace={trace_id}" not in server.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert f"trace={trace_id}" in server.log()

    # None sent (or a malformed one): the call starts a trace of its own.
    for headers in ({}, {"traceparent": "00-not-a-trace-01"}):
        fresh = server.invoke("traced", headers=headers).json()
        assert re.fullmatch("[0-9a-f]{32}", fresh["trace_id"]) and fresh["trace_id"] != trace_id
        assert "parent_span_id" not in fresh
    # In the body too, for clients that cannot set headers; the header wins when both are there.
    body = {"args": [], "traceparent": f"00-{trace_id}-{parent}-00"}
    assert server.post("/function/traced", json=body).json()["trace_id"] == trace_id
