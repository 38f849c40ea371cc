"""Streamed results over HTTP: a generator's chunks reach the client as Server-Sent Events (or NDJSON) before the
function ends, under both isolations; the record keeps them; timeouts still apply."""
import json

import pytest
import requests

from gate import GATED_GENERATOR, Gate

ADD = "def main(a, b):\n    return a + b\n"
SLOW = "import time\n\ndef main():\n    yield 'started'\n    time.sleep(30)\n    yield 'never'\n"


def sse_events(response):
    """(event name, data) for each event of a text/event-stream response, as they arrive."""
    name, data = "message", []
    for line in response.iter_lines(chunk_size=1, decode_unicode=True):
        if line == "":
            if data:
                yield name, "\n".join(data)
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())


@pytest.fixture
def gate():
    g = Gate()
    yield g
    g.close()


@pytest.mark.parametrize("isolation", ["process", "inprocess"])
def test_a_generators_first_chunk_arrives_before_it_ends_as_events(start_http, gate, isolation):
    server = start_http("--isolation", isolation)
    server.upload("gen", GATED_GENERATOR)
    response = requests.post(server.url + "/function/gen", json={"args": [gate.port]}, auth=server.auth, stream=True,
                             headers={"Accept": "text/event-stream"}, timeout=30)
    assert response.status_code == 200 and response.headers["Content-Type"] == "text/event-stream"
    events = sse_events(response)
    assert next(events) == ("chunk", "1")  # the function now waits at the gate: it cannot have ended
    gate.open()
    assert next(events) == ("chunk", "2")
    name, data = next(events)
    record = json.loads(data)
    assert name == "record" and record["status"] == "success"
    assert record["result"] == [1, 2] and record["chunks"] == 2
    assert server.get(f"/admin/invocations/{record['id']}").json()["result"] == [1, 2]


def test_without_asking_for_events_chunks_come_as_ndjson_and_plain_functions_answer_as_ever(start_http, gate):
    server = start_http()
    server.upload("gen", GATED_GENERATOR)
    server.upload("add", ADD)
    response = requests.post(server.url + "/function/gen", json={"args": [gate.port]}, auth=server.auth, stream=True,
                             timeout=30)
    assert response.headers["Content-Type"] == "application/x-ndjson"
    lines = response.iter_lines(chunk_size=1)
    assert json.loads(next(lines)) == {"chunk": 1, "data": 1}
    gate.open()
    assert json.loads(next(lines)) == {"chunk": 2, "data": 2}
    assert json.loads(next(lines))["result"] == [1, 2]

    plain = server.invoke("add", 1, 2)
    assert plain.headers["Content-Type"] == "application/json" and plain.json()["result"] == 3
    asked = requests.post(server.url + "/function/add", json={"args": [1, 2]}, auth=server.auth,
                          headers={"Accept": "text/event-stream"}, timeout=30)
    assert [(name, json.loads(data)["result"]) for name, data in sse_events(asked)] == [("record", 3)]
    refused = requests.post(server.url + "/function/nope", auth=server.auth, headers={"Accept": "text/event-stream"},
                            timeout=30)
    assert refused.status_code == 404 and refused.json()["code"] == "not_found"  # refused: as ever


def test_a_stream_stops_at_the_timeout_and_its_record_says_so(start_http):
    server = start_http("--timeout", "1")
    server.upload("slow", SLOW)
    response = requests.post(server.url + "/function/slow", auth=server.auth, stream=True, timeout=30,
                             headers={"Accept": "text/event-stream"})
    events = list(sse_events(response))
    assert events[0] == ("chunk", '"started"')
    name, data = events[-1]
    record = json.loads(data)
    assert name == "record" and record["error_type"] == "Timeout" and record["chunks"] == 1, record


def test_the_record_keeps_the_chunks_within_the_output_limit(start_http):
    server = start_http("--isolation", "inprocess")
    server.upload("many", "def main():\n    for i in range(20000):\n        yield i\n")
    record = server.invoke("many", headers={"Accept": "application/json"})
    lines = record.text.splitlines()
    assert len(lines) == 20001, "every chunk reached the client"
    last = json.loads(lines[-1])
    assert last["chunks"] == 20000 and last["chunks_truncated"] is True
    assert last["result"][:3] == [0, 1, 2] and len(json.dumps(last["result"], separators=(",", ":"))) <= 64 * 1024
