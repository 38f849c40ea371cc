"""python3 -m libfaas --url: the same verbs against a faas-http server, as a user on another machine types them."""
import json
import os
import subprocess
import threading

import conftest

ADD = "def main(a, b):\n    return a + b\n"


def faas(url, *args, password="test-password", check=True, stdin=None):
    env = dict(os.environ, PYTHONPATH=str(conftest.BUILD / "python"), FAAS_URL=url)
    env.pop("FAAS_HTTP_PASSWORD", None)
    if password is not None:
        env["FAAS_HTTP_PASSWORD"] = password
    result = subprocess.run(["/usr/bin/python3", "-m", "libfaas", *args], capture_output=True, text=True, env=env,
                            timeout=120, input=stdin)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_every_verb_against_a_server(start_http, tmp_path):
    server = start_http()
    folder = tmp_path / "calc"
    folder.mkdir()
    (folder / "func.py").write_text(ADD)
    info = json.loads(faas(server.url, "deploy", str(folder)).stdout)
    assert info["name"] == "calc" and info["version"] == 1

    record = json.loads(faas(server.url, "invoke", "calc", "2", "3", "--request-id", "remote-1").stdout)
    assert record["result"] == 5 and record["request_id"] == "remote-1"
    assert faas(server.url, "list").stdout.startswith("calc\tv1\t")
    lines = faas(server.url, "logs", "calc").stdout.splitlines()
    assert [json.loads(line)["request_id"] for line in lines] == ["remote-1"]
    assert json.loads(faas(server.url, "status").stdout)["status"] == "ok"

    (folder / "func.py").write_text("def main(a, b):\n    return a * b\n")
    faas(server.url, "deploy", str(folder))
    assert faas(server.url, "versions", "calc").stdout.splitlines()[0].startswith("v2\t")
    assert json.loads(faas(server.url, "invoke", "calc", "2", "3", "--version", "1").stdout)["result"] == 5
    assert json.loads(faas(server.url, "rollback", "calc", "1").stdout)["version"] == 1
    view = json.loads(faas(server.url, "settings", "calc", "--set", "timeout=3", "--secret", "TOKEN",
                           stdin="s3cret\n").stdout)
    assert view["timeout"] == 3 and view["secrets"] == ["TOKEN"]
    assert server.get("/admin/functions/calc/settings").json()["secrets"] == ["TOKEN"]

    failed = faas(server.url, "invoke", "calc", "1", check=False)  # main() misses an argument
    assert failed.returncode == 1 and json.loads(failed.stdout)["error_type"] == "TypeError"
    assert faas(server.url, "delete", "calc").stdout.strip() == "deleted calc"


def test_logs_follow_prints_records_as_another_client_makes_them(start_http):
    server = start_http()
    server.upload("calc", ADD)
    server.invoke("calc", 1, 1)
    env = dict(os.environ, PYTHONPATH=str(conftest.BUILD / "python"), FAAS_URL=server.url,
               FAAS_HTTP_PASSWORD="test-password")
    follower = subprocess.Popen(["/usr/bin/python3", "-m", "libfaas", "logs", "calc", "--limit", "1", "--follow"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    watchdog = threading.Timer(60, follower.kill)  # a hung stream fails the test instead of blocking it
    watchdog.start()
    try:
        assert json.loads(follower.stdout.readline())["result"] == 2  # the newest record, first
        made = [server.invoke("calc", i, 10).json()["id"] for i in range(3)]
        assert [json.loads(follower.stdout.readline())["id"] for _ in made] == made
    finally:
        watchdog.cancel()
        follower.terminate()
        follower.wait(10)


def test_invoke_stream_prints_each_chunk_then_the_record(start_http):
    server = start_http()
    server.upload("count", "def main(n):\n    for i in range(n):\n        yield {'i': i}\n")
    lines = faas(server.url, "invoke", "count", "3", "--stream").stdout.strip().split("\n", 3)
    assert [json.loads(line) for line in lines[:3]] == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert json.loads(lines[3])["result"] == [{"i": 0}, {"i": 1}, {"i": 2}]


def test_errors_are_one_clear_line(start_http):
    server = start_http()
    for args, password, words in [
        (["list"], "wrong", "HTTP 401: the server refused the credentials"),
        (["invoke", "nope"], "test-password", "HTTP 404: function 'nope' not found"),
        (["rollback", "nope", "1"], "test-password", "HTTP 404"),
    ]:
        result = faas(server.url, *args, password=password, check=False)
        assert result.returncode == 1 and result.stderr.startswith("error: " + words), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    unreachable = faas(f"http://127.0.0.1:{conftest.free_port()}", "list", check=False)
    assert unreachable.returncode == 1 and "cannot reach http://127.0.0.1:" in unreachable.stderr
    assert len(unreachable.stderr.strip().splitlines()) == 1
    bad = faas("ftp://somewhere", "list", check=False)
    assert bad.returncode == 1 and "--url must be" in bad.stderr
