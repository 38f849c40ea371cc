"""faas-grpc end to end: every RPC of libfaas.v1.Faas through grpcio, streamed chunks, deadlines, credentials,
health, reflection, TLS and oversized messages."""
import json
import os
import socket
import subprocess
import threading
import time

import grpc
import pytest

from gate import GATED_GENERATOR, Gate
from grpc_client import FaasClient, basic, messages

ADD = "def main(a, b=0):\n    return a + b\n"


def error_code(error):
    """The engine's error code a refused call carries in its trailing metadata."""
    return dict(error.trailing_metadata() or ()).get("faas-error-code")


def test_every_rpc(start_grpc):
    server = start_grpc()
    client = server.client
    info = client.Upload(name="calc", code=ADD)
    assert (info.name, info.version) == ("calc", 1)
    assert [f.name for f in client.List().functions] == ["calc"]

    record = client.Invoke(function="calc", args_json="[2]", kwargs_json='{"b": 10}', request_id="r-1")
    assert (record.status, json.loads(record.result_json), record.request_id) == ("success", 12, "r-1")
    assert json.loads(record.json)["id"] == record.id and record.version == 1
    big = client.Invoke(function="calc", args_json="[123456789012345678901234567890, 1]")
    assert big.result_json == "123456789012345678901234567891"  # integers of any size stay exact

    client.Upload(name="fails", code="def main():\n    raise ValueError('no')\n")
    failed = client.Invoke(function="fails")  # the function's failure is its record's, not the call's
    assert (failed.status, failed.error_type, failed.error) == ("error", "ValueError", "no")

    logs = list(client.Logs(function="calc", limit=1))
    assert [json.loads(r.json)["id"] for r in logs] == [big.id]
    assert len(list(client.Logs(function="calc"))) == 2
    status = json.loads(client.Status().json)
    assert status["status"] == "ok" and status["invocations"]["total"] == 3

    client.Delete(name="calc")
    with pytest.raises(grpc.RpcError) as refused:
        client.Invoke(function="calc")
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND and error_code(refused.value) == "not_found"
    with pytest.raises(grpc.RpcError) as refused:
        client.Delete(name="calc")
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND


def test_bad_input_is_refused_clearly(start_grpc):
    client = start_grpc().client
    client.Upload(name="calc", code=ADD)
    for fields in ({"args_json": "[1"}, {"args_json": '{"a": 1}'}, {"args_json": '[1], "kwargs": {}'},
                   {"kwargs_json": "[1]"}, {"function": "../etc"}):
        with pytest.raises(grpc.RpcError) as refused:
            client.Invoke(**{"function": "calc", **fields})
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, fields
    with pytest.raises(grpc.RpcError) as refused:
        client.Upload(name="broken", code="def main(:\n")
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_code(refused.value) == "build_failed" and "SyntaxError" in refused.value.details()
    with pytest.raises(grpc.RpcError) as refused:
        client.Upload(name="calc", code=ADD, settings_json="[]")
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert json.loads(client.Invoke(function="calc", args_json="[1, 2]").result_json) == 3


def test_a_streamed_generator_sends_its_first_chunk_before_it_ends(start_grpc):
    client = start_grpc().client
    client.Upload(name="gen", code=GATED_GENERATOR)
    gate = Gate()
    try:
        events = client.InvokeStream(function="gen", args_json=json.dumps([gate.port]), timeout=60)
        first = next(events)  # the function is still waiting at the gate
        assert (first.chunk.index, json.loads(first.chunk.data_json)) == (1, 1)
        gate.open()
        rest = list(events)
    finally:
        gate.close()
    assert [(e.chunk.index, json.loads(e.chunk.data_json)) for e in rest[:-1]] == [(2, 2)]
    record = rest[-1].record
    assert record.status == "success" and json.loads(record.result_json) == [1, 2]
    assert json.loads(record.json)["chunks"] == 2

    client.Upload(name="plain", code=ADD)  # a function that returns sends only its record
    only = list(client.InvokeStream(function="plain", args_json="[1, 1]"))
    assert len(only) == 1 and json.loads(only[0].record.result_json) == 2


def test_the_deadline_becomes_the_invocations_timeout(start_grpc):
    client = start_grpc("--timeout", "30").client
    client.Upload(name="spin", code="def main():\n    while True:\n        pass\n")
    started = time.monotonic()
    record = client.Invoke(function="spin", timeout=1.5)  # the record comes back before the deadline
    assert time.monotonic() - started < 1.6
    assert (record.status, record.error_type) == ("error", "Timeout")
    assert record.duration_ms < 1500
    assert json.loads(list(client.Logs(function="spin"))[-1].json)["error_type"] == "Timeout"
    with pytest.raises(grpc.RpcError) as refused:
        client.Invoke(function="spin", timeout=0.001)
    assert refused.value.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.INVALID_ARGUMENT)


def test_credentials(start_grpc):
    server = start_grpc()
    server.client.Upload(name="calc", code=ADD)
    server.client.Upload(name="open", code=ADD, settings_json='{"public": true}')
    for metadata in ([], [basic("admin", "wrong")], [basic("someone", server.password)],
                     [("authorization", "Bearer " + server.password)]):
        anonymous = FaasClient(server.channel, metadata)
        for call in (lambda: anonymous.Invoke(function="calc"), anonymous.List, anonymous.Status,
                     lambda: anonymous.Upload(name="x", code=ADD), lambda: list(anonymous.Logs(function="calc")),
                     lambda: list(anonymous.InvokeStream(function="calc"))):
            with pytest.raises(grpc.RpcError) as refused:
                call()
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED, metadata
        assert json.loads(anonymous.Invoke(function="open", args_json="[1, 2]").result_json) == 3
    assert [f.name for f in server.client.List().functions] == ["calc", "open"]


def test_public_invoke_lets_invocations_through(start_grpc):
    server = start_grpc("--public-invoke")
    server.client.Upload(name="calc", code=ADD)
    anonymous = FaasClient(server.channel)
    assert json.loads(anonymous.Invoke(function="calc", args_json="[4, 5]").result_json) == 9
    with pytest.raises(grpc.RpcError) as refused:
        anonymous.List()
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_logs_follow_streams_new_records(start_grpc):
    client = start_grpc().client
    client.Upload(name="calc", code=ADD)
    client.Invoke(function="calc", args_json="[0]")
    stream = client.Logs(function="calc", follow=True, limit=1, timeout=60)
    received = []

    def read():
        try:
            received.extend(stream)
        except grpc.RpcError as ended:
            assert ended.code() == grpc.StatusCode.CANCELLED  # by the test, below

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    time.sleep(0.3)
    answers = [client.Invoke(function="calc", args_json=f"[{i}]") for i in (1, 2)]
    deadline = time.monotonic() + 10
    while len(received) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    stream.cancel()
    reader.join(10)
    assert [json.loads(r.result_json) for r in received] == [0, 1, 2]
    assert [r.id for r in received[1:]] == [a.id for a in answers]
    after = list(client.Logs(function="calc", follow=False, after=received[0].id))  # after: only when following
    assert len(after) == 3


def test_health_and_reflection(start_grpc):
    server = start_grpc()
    health = messages("health")
    check = server.channel.unary_unary("/grpc.health.v1.Health/Check",
                                       request_serializer=health.HealthCheckRequest.SerializeToString,
                                       response_deserializer=health.HealthCheckResponse.FromString)
    assert check(health.HealthCheckRequest()).status == health.HealthCheckResponse.SERVING

    reflection = messages("reflection")
    info = server.channel.stream_stream(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection.ServerReflectionResponse.FromString)
    listed, described = info(iter([reflection.ServerReflectionRequest(list_services=""),
                                   reflection.ServerReflectionRequest(file_containing_symbol="libfaas.v1.Faas")]))
    names = {service.name for service in listed.list_services_response.service}
    assert {"libfaas.v1.Faas", "grpc.health.v1.Health"} <= names
    from google.protobuf import descriptor_pb2
    files = [descriptor_pb2.FileDescriptorProto.FromString(raw)
             for raw in described.file_descriptor_response.file_descriptor_proto]
    faas = next(f for f in files if f.name == "libfaas/v1/faas.proto")
    assert {m.name for m in faas.service[0].method} == {"Invoke", "InvokeStream", "Upload", "List", "Delete",
                                                        "Logs", "Status"}


def test_oversized_messages_are_refused_and_the_server_keeps_serving(start_grpc):
    server = start_grpc("--max-message-mib", "0.05")
    client = server.client
    client.Upload(name="calc", code=ADD)
    for call in (lambda: client.Upload(name="big", code="x = 1\n" * 20000),
                 lambda: client.Invoke(function="calc", args_json=json.dumps(["y" * 100000]))):
        with pytest.raises(grpc.RpcError) as refused:
            call()
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert json.loads(client.Invoke(function="calc", args_json="[1, 2]").result_json) == 3
    assert server.stop() == 0, server.log()


def test_tls(start_grpc, tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    server = start_grpc("--tls-cert", str(cert), "--tls-key", str(key))
    channel = grpc.secure_channel(server.target, grpc.ssl_channel_credentials(cert.read_bytes()))
    client = FaasClient(channel, [basic("admin", server.password)])
    client.Upload(name="calc", code=ADD)
    assert json.loads(client.Invoke(function="calc", args_json="[20, 22]").result_json) == 42
    with pytest.raises(grpc.RpcError):  # plaintext to a TLS port
        FaasClient(grpc.insecure_channel(server.target), client.metadata).List(timeout=5)
    channel.close()


def test_bad_configuration_is_one_clear_line(tmp_path):
    from conftest import BUILD
    taken = socket.create_server(("127.0.0.1", 0))
    for args, expected in ((["--port", "0", "--tls-cert", str(tmp_path / "missing.pem")], "both --tls-cert and --tls-key"),
                           (["--port", "0", "--tls-cert", "/nonexistent", "--tls-key", "/nonexistent"],
                            "cannot read the TLS"),
                           (["--port", str(taken.getsockname()[1])], "cannot listen on 127.0.0.1:")):
        done = subprocess.run([str(BUILD / "frontends" / "grpc" / "faas-grpc"), "--data-dir", str(tmp_path / "d"),
                               "--host", "127.0.0.1", *args], capture_output=True, text=True,
                              timeout=30, env={**os.environ, "FAAS_HTTP_PASSWORD": "x"})
        assert done.returncode == 1 and expected in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) <= 2, done.stderr  # the warning of isolation aside
    taken.close()
