"""faas-coap end to end: coap-client (libcoap's) and raw datagrams against the server, with and without DTLS,
block-wise transfers, retransmissions, Observe, refusals and hostile input."""
import json
import os
import socket
import struct
import subprocess
import time

import pytest

import coap_raw

ADD = "def main(a, b=0):\n    return a + b\n"


def wait_until(check, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def record_of(out):
    return json.loads(out)


def test_upload_over_http_invoke_over_coap_with_and_without_dtls(start_http, start_coap, tmp_path):
    coap = start_coap()
    http = start_http(data_dir=tmp_path / "data")
    http.upload("calc", ADD)
    # The other server's upload is seen within a second.
    assert wait_until(lambda: "result" in coap.client("post", "/function/calc", '{"args": [1, 2]}')[0], 2)
    out, _ = coap.client("post", "/function/calc", '{"args": [20], "kwargs": {"b": 22}, "request_id": "c-1"}')
    record = record_of(out)
    assert (record["result"], record["request_id"], record["status"]) == (42, "c-1", "success")
    # Its record is the engine's, seen over HTTP too.
    assert any(r["id"] == record["id"] for r in http.get("/admin/logs/calc").json())

    out, err = coap.client("post", "/function/calc", '{"args": [1, 2]}', dtls=False)
    assert out == "" and err.startswith("4.01"), err  # plain coap:// without the key
    http.settings("calc", {"public": True})
    assert wait_until(lambda: record_of(coap.client("post", "/function/calc", '{"args": [1, 2]}', dtls=False)[0]
                                        or "{}").get("result") == 3, 3)
    for method, path in (("get", "/admin/functions"), ("get", "/admin/status"), ("delete", "/admin/functions/calc"),
                         ("get", "/function/calc/logs")):
        out, err = coap.client(method, path, dtls=False)
        assert err.startswith("4.01"), (path, err)  # admin work needs the key, public function or not


def test_public_invoke_and_admin_routes(start_coap, tmp_path):
    coap = start_coap("--public-invoke")
    code = __import__("base64").b64encode(ADD.encode()).decode()
    out, err = coap.client("post", "/admin/upload", json.dumps({"name": "calc", "code_b64": code}))
    assert json.loads(out) == {"status": "success", "function": "calc", "version": 1}, err
    assert record_of(coap.client("post", "/function/calc", '{"args": [2, 3]}', dtls=False)[0])["result"] == 5
    assert "calc" in json.loads(coap.client("get", "/admin/functions")[0])
    assert json.loads(coap.client("get", "/admin/status")[0])["status"] == "ok"
    logs = json.loads(coap.client("get", "/function/calc/logs?limit=1")[0])
    assert len(logs) == 1 and logs[0]["result"] == 5
    assert coap.client("post", "/function/missing", "{}")[1].startswith("4.04")
    assert coap.client("post", "/function/calc", '{"args": 5}')[1].startswith("4.00")
    assert coap.client("post", "/function/calc", "not json")[1].startswith("4.00")
    assert coap.client("get", "/function/calc")[1].startswith("4.05")
    assert coap.client("get", "/nothing/here")[1].startswith("4.04")
    _, err = coap.client("post", "/admin/upload", json.dumps({"name": "bad", "code_b64": "!!"}))
    assert err.startswith("4.00"), err
    assert coap.client("delete", "/admin/functions/calc")[1] == ""
    assert coap.client("post", "/function/calc", "{}", dtls=False)[1].startswith("4.04")


def test_blockwise_64_kib_body_and_answer(start_coap):
    coap = start_coap()
    code = __import__("base64").b64encode(b"def main(s, n):\n    return [len(s) + n, s[-3:]]\n").decode()
    coap.client("post", "/admin/upload", json.dumps({"name": "size", "code_b64": code}))
    body = coap.data_dir.parent / "big.json"
    body.write_text(json.dumps({"args": ["x" * 65536 + "end", 1]}))
    out, err = coap.client("post", "/function/size", body, extra=("-b", "1024"))
    record = record_of(out)  # the record holds the 64 KiB argument: it came back block-wise too
    assert record["result"] == [65540, "end"] and len(out) > 65536, err
    too_big = coap.data_dir.parent / "too-big.json"
    too_big.write_text(json.dumps({"args": ["x" * (2 << 20)]}))
    _, err = coap.client("post", "/function/size", too_big, extra=("-b", "1024"), timeout=60)
    assert err.startswith("4.13"), err


def test_wrong_key_or_identity_is_refused(start_coap):
    coap = start_coap("--public-invoke")
    coap.client("post", "/admin/upload", json.dumps({"name": "calc", "code_b64": __import__("base64").b64encode(
        ADD.encode()).decode()}))
    for identity, key in (("admin", "wrong"), ("someone", coap.password)):
        out, err = coap.client("post", "/function/calc", '{"args": [1, 2]}', identity=identity, key=key)
        assert "result" not in out + err, (identity, out, err)  # the handshake fails: no answer at all
    assert "faas-coap: listening" in coap.log() and coap.process.poll() is None


def public_function(coap, name, code):
    coap.client("post", "/admin/upload", json.dumps({"name": name, "code_b64": __import__("base64").b64encode(
        code.encode()).decode(), "settings": {"public": True}}))


def test_a_retransmitted_request_runs_once(start_coap):
    coap = start_coap()
    public_function(coap, "slow", "import time\ndef main(x):\n    time.sleep(0.5)\n    return x\n")
    client = coap_raw.Client(coap.port)
    client.prove("function/slow", b'{"args": [0]}')
    request = coap_raw.encode(coap_raw.CON, coap_raw.POST, 0x1234, b"\x01\x02", "function/slow", b'{"args": [7]}')
    client.send(request)
    time.sleep(0.1)
    client.send(request)  # while it runs: acknowledged again, not run again
    first = client.receive()
    client.send(request)  # after the answer: the same answer again
    second = client.receive()
    assert first[1] == second[1] == coap_raw.code("2.05")
    assert json.loads(first[5]) == json.loads(second[5]) and json.loads(first[5])["result"] == 7
    logs = json.loads(coap.client("get", "/function/slow/logs")[0])
    assert [r["args"] for r in logs] == [[0], [7]]  # the proof's call, and this one once
    client.send(coap_raw.encode(coap_raw.CON, coap_raw.POST, 0x1235, b"\x03", "function/slow", b'{"args": [8]}'))
    assert json.loads(client.receive()[5])["result"] == 8  # a new message id is a new request
    assert len(json.loads(coap.client("get", "/function/slow/logs")[0])) == 3
    client.close()


def test_observe_pushes_new_records(start_coap):
    coap = start_coap()
    coap.client("post", "/admin/upload", json.dumps({"name": "calc", "code_b64": __import__("base64").b64encode(
        ADD.encode()).decode()}))
    coap.client("post", "/function/calc", '{"args": [0]}')
    observer = subprocess.Popen(["coap-client-openssl", "-m", "get", "-s", "6", "-u", "admin", "-k", coap.password,
                                 "-v", "7", coap.url("/function/calc/logs")],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(1.5)
    ids = [record_of(coap.client("post", "/function/calc", f'{{"args": [{i}]}}')[0])["id"] for i in (1, 2)]
    out, _ = observer.communicate(timeout=30)
    notifications = [line for line in out.splitlines() if "Observe:" in line and "2.05" in line]
    assert len(notifications) >= 2, out
    assert ids[-1] in notifications[-1]  # the newest record is the last state pushed


def test_unauthenticated_answers_are_not_much_larger_than_requests(start_coap):
    coap = start_coap()
    public_function(coap, "big", "def main():\n    return 'y' * 4000\n")
    client = coap_raw.Client(coap.port)
    request = coap_raw.encode(coap_raw.CON, coap_raw.POST, 7, b"\x09", "function/big", b"{}")
    for _ in range(3):  # an address that has not proved itself gets a challenge no larger than its request
        client.send(request)
        datagram = client.sock.recv(65536)
        message = coap_raw.decode(datagram)
        assert message[1] == coap_raw.code("4.01") and coap_raw.ECHO in message[4]
        assert len(datagram) <= len(request)
    logs = json.loads(coap.client("get", "/function/big/logs")[0])
    assert logs == []  # nothing ran for it
    answer = client.prove("function/big")  # then the whole answer (block-wise: it is larger than a datagram)
    assert answer[1] == coap_raw.code("2.05") and coap_raw.BLOCK2 in answer[4]
    client.close()


def test_overload_answers_503_with_max_age(start_coap):
    coap = start_coap("--max-concurrency", "1", "--max-queue", "1")
    public_function(coap, "slow", "import time\ndef main():\n    time.sleep(0.3)\n    return 1\n")
    client = coap_raw.Client(coap.port)
    client.prove("function/slow")
    for mid in range(20):
        client.send(coap_raw.encode(coap_raw.NON, coap_raw.POST, mid, bytes([mid + 1]), "function/slow", b"{}"))
    codes, max_ages = [], []
    for _ in range(20):
        message = client.receive(timeout=10)
        codes.append(message[1])
        max_ages += message[4].get(coap_raw.MAX_AGE, [])
    assert coap_raw.code("5.03") in codes and coap_raw.code("2.05") in codes, codes
    assert max_ages and all(int.from_bytes(age, "big") >= 1 for age in max_ages)
    client.close()


def test_hostile_datagrams_are_dropped_or_refused_and_the_server_keeps_serving(start_coap):
    coap = start_coap()
    public_function(coap, "calc", ADD)
    raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    valid = coap_raw.encode(coap_raw.CON, coap_raw.POST, 99, b"\x05", "function/calc", b'{"args": [1, 2]}')
    hostile = [b"", b"\x40", b"\x40\x02", valid[:6], valid[:-5], b"\xff" * 40, bytes(range(256)),
               b"\x48\x02\x00\x01",                                 # a token longer than the datagram
               b"\x40\x02\x00\x02\xf0",                             # option delta 15: reserved
               b"\x40\x02\x00\x03\xbd\xff" + b"a" * 10,              # an option longer than the datagram
               b"\x70\x02\x00\x04",                                 # version 1, type RST with a code
               coap_raw.encode(coap_raw.CON, coap_raw.POST, 5, b"\x06", "function/calc", b"{}",
                               options=[(27, bytes([0x0F]))]),      # Block1 with SZX 7: reserved
               coap_raw.encode(coap_raw.CON, coap_raw.POST, 6, b"\x07", "function/calc", b"x" * 64,
                               options=[(27, struct.pack("!I", (1 << 20 | 0x0E))[1:]), (60, struct.pack("!I", 1 << 31))])]
    for datagram in hostile * 3:
        raw.sendto(datagram, ("127.0.0.1", coap.port))
    for mid in range(3000):  # a flood of non-confirmable requests
        raw.sendto(coap_raw.encode(coap_raw.NON, coap_raw.POST, mid, struct.pack("!H", mid), "function/calc",
                                   b'{"args": [1]}'), ("127.0.0.1", coap.port))
    raw.close()
    time.sleep(1)
    client = coap_raw.Client(coap.port)
    answer = client.prove("function/calc", b'{"args": [40, 2]}')
    assert json.loads(answer[5])["result"] == 42
    assert coap.process.poll() is None
    assert coap.stop() == 0, coap.log()


def block1(number, more=True, szx=6):
    value = number << 4 | more << 3 | szx
    return value.to_bytes(3 if value > 0xFFFF else 2 if value > 0xFF else 1, "big")


def test_oversized_and_broken_block_transfers_are_refused(start_coap):
    coap = start_coap("--max-body-kib", "64")
    public_function(coap, "calc", ADD)
    client = coap_raw.Client(coap.port)
    client.prove("function/calc", b'{"args": [1]}')

    def send_block(mid, number, options=(), more=True, token=b"\x31"):
        client.send(coap_raw.encode(coap_raw.CON, coap_raw.POST, mid, token, "function/calc", b"a" * 1024,
                                    options=[(27, block1(number, more)), *options]))
        return client.receive()

    too_big = send_block(1, 0, options=[(60, (100 << 20).to_bytes(4, "big"))])  # declared 100 MiB: at once
    assert too_big[1] == coap_raw.code("4.13")
    for number in range(100):  # undeclared: refused once past the limit, nothing kept beyond it
        answer = send_block(100 + number, number)
        if answer[1] != coap_raw.code("2.31"):
            break
    assert answer[1] == coap_raw.code("4.13") and number == 64, (number, answer)
    assert send_block(300, 5)[1] == coap_raw.code("4.08")  # a block of a transfer never begun
    assert send_block(301, 0)[1] == coap_raw.code("2.31")
    assert send_block(302, 2)[1] == coap_raw.code("4.08")  # one skipped
    answer = client.prove("function/calc", b'{"args": [2, 3]}')
    assert json.loads(answer[5])["result"] == 5
    client.close()


def test_bad_configuration_is_one_clear_line(tmp_path):
    from conftest import BUILD
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    for args, expected in ((["--port", "0", "--psk-key-file", str(tmp_path / "missing")], "cannot read a key from"),
                           (["--port", str(taken.getsockname()[1])], "cannot listen on 127.0.0.1:")):
        done = subprocess.run([str(BUILD / "frontends" / "coap" / "faas-coap"), "--data-dir", str(tmp_path / "d"),
                               "--host", "127.0.0.1", "--dtls-port", "0", *args],
                              capture_output=True, text=True, timeout=30, env={**os.environ, "FAAS_HTTP_PASSWORD": "x"})
        assert done.returncode == 1 and expected in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) <= 2, done.stderr  # the warning of isolation aside
    taken.close()
