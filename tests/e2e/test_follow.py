"""Following records live over Server-Sent Events: GET /admin/logs/{name}?follow=1 and GET /admin/events, in order,
resumed after a reconnect (and a restart) without gaps, and a client that stops reading is dropped, never slowing
the calls."""
import socket
import time

import requests

ADD = "def main(a, b):\n    return a + b\n"
LOUD = "def main(i):\n    print('x' * 40000)\n    return i\n"


class Events:
    """A text/event-stream response read event by event: (id, event name, data)."""

    def __init__(self, server, path, last_event_id=None):
        headers = {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        self.response = requests.get(server.url + path, auth=server.auth, headers=headers, stream=True,
                                     timeout=10)
        assert self.response.status_code == 200, self.response.text
        assert self.response.headers["Content-Type"] == "text/event-stream"
        # One byte at a time: a larger chunk would wait for bytes that only the next event brings.
        self.lines = self.response.iter_lines(chunk_size=1, decode_unicode=True)

    def next(self):
        event_id, name, data = None, "message", []
        for line in self.lines:
            if line == "":
                if data:
                    return event_id, name, "\n".join(data)
                continue  # the end of a comment block
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "id":
                event_id = value
            elif field == "event":
                name = value
            elif field == "data":
                data.append(value)
        raise EOFError("the stream ended")

    def records(self, count):
        out = []
        while len(out) < count:
            event_id, name, data = self.next()
            assert name == "message", (name, data)
            record = __import__("json").loads(data)
            assert record["id"] == event_id
            out.append(record)
        return out

    def close(self):
        self.response.close()


def calls(server, name, values):
    ids = []
    for value in values:
        answer = server.invoke(name, value, 1) if name == "add" else server.invoke(name, value)
        assert answer.status_code == 200, answer.text
        ids.append(answer.json()["id"])
    return ids


def test_a_follower_sees_another_clients_calls_in_order_and_resumes_without_gaps(start_http, tmp_path):
    server = start_http("--isolation", "inprocess")
    server.upload("add", ADD)
    server.upload("other", ADD)
    follower = Events(server, "/admin/logs/add?follow=1")
    everything = Events(server, "/admin/events")
    first = calls(server, "add", range(5))
    calls(server, "other", [7])
    records = follower.records(5)
    assert [r["id"] for r in records] == first
    assert [r["result"] for r in records] == [1, 2, 3, 4, 5]
    assert [r["function"] for r in everything.records(6)] == ["add"] * 5 + ["other"]
    follower.close()

    # Away for three calls: the reconnect with Last-Event-ID gets exactly those, then the new ones.
    missed = calls(server, "add", range(10, 13))
    again = Events(server, "/admin/logs/add?follow=1", last_event_id=first[-1])
    later = calls(server, "add", [20])
    assert [r["id"] for r in again.records(4)] == missed + later
    again.close()
    everything.close()

    # After a restart the store replays what came after the last id seen.
    server.stop()
    server.start()
    resumed = Events(server, "/admin/logs/add?follow=1", last_event_id=missed[0])
    assert [r["id"] for r in resumed.records(2)] == missed[1:]
    resumed.close()


def test_following_starts_with_the_newest_records_when_asked(start_http):
    server = start_http("--isolation", "inprocess")
    server.upload("add", ADD)
    before = calls(server, "add", range(4))
    follower = Events(server, "/admin/logs/add?follow=1&limit=2")
    after = calls(server, "add", [9])
    assert [r["id"] for r in follower.records(3)] == before[2:] + after
    follower.close()


def test_following_needs_credentials_and_a_known_function(start_http):
    server = start_http("--isolation", "inprocess")
    assert requests.get(server.url + "/admin/events", timeout=10).status_code == 401
    assert server.get("/admin/logs/missing?follow=1").status_code == 404
    assert server.get("/admin/events?after=not%20an%20id").status_code == 400


def test_a_client_that_stops_reading_is_dropped_and_calls_go_on(start_http):
    server = start_http("--isolation", "inprocess")
    server.upload("loud", LOUD)
    # A follower that never reads: its socket's buffers fill, then its share of records on the server does.
    stuck = socket.create_connection(("127.0.0.1", server.port))
    token = __import__("base64").b64encode(f"admin:{server.password}".encode()).decode()
    stuck.sendall(f"GET /admin/events HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {token}\r\n\r\n".encode())
    time.sleep(0.2)
    slowest = 0.0
    for i in range(600):  # 24 MB of records: more than the sockets' buffers and a follower's 8 MiB hold
        started = time.monotonic()
        answer = server.invoke("loud", i)
        slowest = max(slowest, time.monotonic() - started)
        assert answer.status_code == 200, answer.text
    # Generous: a server held up by its slow reader would not answer at all.
    assert slowest < 5, f"a call took {slowest:.1f} s"
    stuck.settimeout(20)  # reading now lets the server write its last event: that it dropped this client
    received = b""
    while chunk := stuck.recv(1 << 20):
        received += chunk
    stuck.close()
    assert b"event: dropped" in received, received[-300:]
