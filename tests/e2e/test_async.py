"""Asynchronous calls over HTTP: retried per attempt, dead letters re-driven after a fix, idempotency keys,
callbacks to a local receiver, and calls kept across a kill -9 of the server."""
import http.server
import json
import signal
import threading
import time

import pytest

# Fails on its first `needed - 1` calls in one worker (its count lives in the module).
FLAKY = """
count = 0

def main(needed):
    global count
    count += 1
    if count < needed:
        raise ValueError(f"attempt {count} failed")
    return count
"""
FAILS = "def main(x):\n    raise RuntimeError('broken')\n"
FIXED = "def main(x):\n    return x * 2\n"
ASYNC = {"X-Faas-Async": "true"}


def submit(server, name, *args, headers=None, expect=202):
    response = server.post(f"/function/{name}", json={"args": list(args)}, headers={**ASYNC, **(headers or {})})
    assert response.status_code == expect, response.text
    return response.json()


def wait_for(server, call_id, status=200, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        answer = server.get(f"/admin/invocations/{call_id}")
        if answer.status_code == status or time.monotonic() > deadline:
            assert answer.status_code == status, answer.text
            return answer.json()
        time.sleep(0.05)


def test_a_call_that_fails_twice_is_retried_and_recorded_per_attempt(start_http):
    server = start_http()
    server.upload("flaky", FLAKY, settings={"retry_delay": 0.05})
    accepted = submit(server, "flaky", 3)
    record = wait_for(server, accepted["id"])
    assert record["status"] == "success" and record["result"] == 3 and record["attempt"] == 3, record
    logs = server.get("/admin/logs/flaky").json()
    assert [r["attempt"] for r in logs] == [1, 2, 3]
    assert [r["status"] for r in logs] == ["error", "error", "success"]
    assert logs[0]["id"] == accepted["id"] and logs[0]["error"] == "attempt 1 failed"
    assert len({r["request_id"] for r in logs}) == 1
    metrics = server.get("/metrics").text
    assert "faas_async_retries_total 2" in metrics, metrics


def test_a_call_that_always_fails_is_a_dead_letter_and_is_redriven_after_a_fix(start_http):
    server = start_http()
    server.upload("fragile", FAILS, settings={"retry_delay": 0.05, "max_attempts": 2})
    call_id = submit(server, "fragile", 21)["id"]
    dead = wait_for(server, call_id, status=200)
    assert dead["status"] == "dead" and dead["attempt"] == 2 and dead["error"] == "broken", dead
    letters = server.get("/admin/dead-letters").json()
    assert [(d["id"], d["function"], d["args"]) for d in letters] == [(call_id, "fragile", [21])]
    assert "faas_dead_letters_total 1" in server.get("/metrics").text

    server.upload("fragile", FIXED)
    response = server.post(f"/admin/dead-letters/{call_id}/redrive")
    assert response.status_code == 200 and response.json()["redriven"] == [call_id]
    record = wait_for(server, call_id)
    assert record["status"] == "success" and record["result"] == 42 and record["attempt"] == 3, record
    assert server.get("/admin/dead-letters").json() == []
    assert server.post(f"/admin/dead-letters/{call_id}/redrive").status_code == 404


def test_dead_letters_are_redriven_together_or_discarded(start_http):
    server = start_http()
    server.upload("fragile", FAILS, settings={"max_attempts": 1})
    ids = [submit(server, "fragile", i)["id"] for i in range(3)]
    for call_id in ids:
        assert wait_for(server, call_id)["status"] == "dead"
    assert server.delete(f"/admin/dead-letters/{ids[0]}").status_code == 200
    assert server.delete(f"/admin/dead-letters/{ids[0]}").status_code == 404
    server.upload("fragile", FIXED)
    assert sorted(server.post("/admin/dead-letters/redrive").json()["redriven"]) == sorted(ids[1:])
    assert [wait_for(server, i)["result"] for i in ids[1:]] == [2, 4]


def test_a_duplicate_idempotency_key_runs_once(start_http):
    server = start_http()
    server.upload("double", FIXED)
    key = {"X-Idempotency-Key": "order-17"}
    first = submit(server, "double", 1, headers=key)["id"]
    assert submit(server, "double", 1, headers=key)["id"] == first
    wait_for(server, first)
    assert submit(server, "double", 1, headers=key)["id"] == first
    assert len(server.get("/admin/logs/double").json()) == 1
    assert submit(server, "double", 1, headers={"X-Idempotency-Key": "order-18"})["id"] != first


class Receiver(http.server.BaseHTTPRequestHandler):
    """Answers 500 to the first POST and keeps the rest (the callback is retried)."""
    received = []
    refused = 0

    def do_POST(self):  # noqa: N802 (the standard library's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if Receiver.refused == 0:
            Receiver.refused += 1
            self.send_response(500)
        else:
            Receiver.received.append((self.path, self.headers["Content-Type"], json.loads(body)))
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_callback_receives_the_record_and_is_retried(start_http):
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        server = start_http()
        server.upload("double", FIXED)
        url = f"http://127.0.0.1:{receiver.server_port}/done?x=1"
        call_id = submit(server, "double", 5, headers={"X-Callback-Url": url})["id"]
        deadline = time.monotonic() + 15
        while not Receiver.received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert Receiver.refused == 1
        [(path, content_type, record)] = Receiver.received
        assert path == "/done?x=1" and content_type == "application/json"
        assert record["id"] == call_id and record["result"] == 10 and record["attempt"] == 1
    finally:
        receiver.shutdown()


@pytest.mark.parametrize("headers, message", [
    ({"X-Faas-Max-Attempts": "0"}, "X-Faas-Max-Attempts"),
    ({"X-Faas-Max-Attempts": "11"}, "X-Faas-Max-Attempts"),
    ({"X-Callback-Url": "https://example.com/"}, "X-Callback-Url"),
    ({"X-Callback-Url": "http://exa mple.com/"}, "X-Callback-Url"),
    ({"X-Idempotency-Key": "k" * 300}, "idempotency key"),
])
def test_bad_async_headers_are_refused(http_server, headers, message):
    http_server.upload("double", FIXED)
    response = http_server.post("/function/double", json={"args": [1]}, headers={**ASYNC, **headers})
    assert response.status_code == 400 and message in response.json()["message"], response.text


def test_only_the_admin_may_ask_for_a_callback(start_http):
    server = start_http("--public-invoke")
    server.upload("double", FIXED)
    anonymous = server.post("/function/double", json={"args": [1]}, auth=None,
                            headers={**ASYNC, "X-Callback-Url": "http://127.0.0.1:9/"})
    assert anonymous.status_code == 400 and "credentials" in anonymous.json()["message"]
    assert server.post("/function/double", json={"args": [1]}, auth=None, headers=ASYNC).status_code == 202


def test_a_call_waiting_for_its_retry_survives_a_kill(start_http, tmp_path):
    data = tmp_path / "kept"
    server = start_http(data_dir=data)
    server.upload("later", "import time\n\ndef main(t):\n    if time.time() < t:\n        raise ValueError('too early')\n"
                           "    return 'late enough'\n", settings={"retry_delay": 3600})
    not_before = time.time() + 1
    call_id = submit(server, "later", not_before, headers={"X-Faas-Max-Attempts": "5"})["id"]
    deadline = time.monotonic() + 10
    while (waiting := wait_for(server, call_id, status=202))["attempt"] < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert waiting["status"] == "pending" and waiting["attempt"] == 2 and waiting["max_attempts"] == 5, waiting
    assert waiting["error"] == "too early"
    server.stop(signal.SIGKILL)  # an hour before its second attempt
    time.sleep(max(0.0, not_before - time.time()))
    server = start_http(data_dir=data)  # takes it up at once
    record = wait_for(server, call_id)
    assert record["status"] == "success" and record["attempt"] == 2 and record["result"] == "late enough", record
