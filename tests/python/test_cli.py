"""python3 -m libfaas: deploy a folder, invoke, logs, list, delete, status, as a user types them."""
import json
import os
import subprocess

from conftest import PACKAGE_DIR, REPO


def faas(data_dir, *args, check=True, stdin=None):
    env = dict(os.environ, PYTHONPATH=str(PACKAGE_DIR))
    result = subprocess.run(["/usr/bin/python3", "-m", "libfaas", "--data-dir", str(data_dir), *args],
                            capture_output=True, text=True, env=env, timeout=120, input=stdin)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_deploys_and_invokes_the_calculator(tmp_path):
    data = tmp_path / "data"
    info = json.loads(faas(data, "deploy", str(REPO / "examples" / "functions" / "calculadora")).stdout)
    assert info["name"] == "calculadora" and info["version"] == 1

    record = json.loads(faas(data, "invoke", "calculadora", "10", "20").stdout)
    assert record["status"] == "success" and record["result"] == 30
    record = json.loads(faas(data, "invoke", "calculadora", "10", "20", "mul").stdout)
    assert record["result"] == 200 and record["args"] == [10, 20, "mul"]
    record = json.loads(faas(data, "invoke", "calculadora", "--args", "[7, 2]", "--kwargs", '{"op": "sub"}',
                             "--request-id", "cli-1").stdout)
    assert record["result"] == 5 and record["request_id"] == "cli-1"

    failed = faas(data, "invoke", "calculadora", "1", "2", "pow", check=False)
    assert failed.returncode == 1 and json.loads(failed.stdout)["error_type"] == "ValueError"

    lines = faas(data, "logs", "calculadora", "--limit", "2").stdout.splitlines()
    assert [json.loads(line)["request_id"] for line in lines][0] == "cli-1" and len(lines) == 2
    assert faas(data, "list").stdout.startswith("calculadora\tv1\t")
    assert json.loads(faas(data, "status").stdout)["status"] == "running"

    assert faas(data, "delete", "calculadora").stdout.strip() == "deleted calculadora"
    missing = faas(data, "invoke", "calculadora", "1", "2", check=False)
    assert missing.returncode == 1 and "not found" in missing.stderr


def test_settings_are_printed_and_changed_with_the_secret_read_from_stdin(tmp_path):
    data = tmp_path / "data"
    faas(data, "deploy", str(REPO / "examples" / "functions" / "calculadora"))
    view = json.loads(faas(data, "settings", "calculadora").stdout)
    assert "timeout" in view["defaults"] and view["env"] == {} and view["secrets"] == []
    changed = faas(data, "settings", "calculadora", "--set", "timeout=4", "--set", "network=none",
                   "--env", "MODE=fast", "--secret", "TOKEN", stdin="from-stdin\n")
    view = json.loads(changed.stdout)
    assert view["timeout"] == 4 and view["network"] == "none" and view["env"] == {"MODE": "fast"}
    assert view["secrets"] == ["TOKEN"] and "from-stdin" not in changed.stdout
    view = json.loads(faas(data, "settings", "calculadora", "--set", "timeout=null", "--env", "MODE",
                           "--remove-secret", "TOKEN").stdout)
    assert "timeout" in view["defaults"] and view["env"] == {} and view["secrets"] == []
    bad = faas(data, "settings", "calculadora", "--set", "timeout=-1", check=False)
    assert bad.returncode == 1 and "timeout" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_versions_rollback_and_pinned_invocations(tmp_path):
    data = tmp_path / "data"
    folder = tmp_path / "versioned"
    folder.mkdir()
    for v in (1, 2):
        (folder / "func.py").write_text(f"def main():\n    return {v}\n")
        faas(data, "deploy", str(folder))
    lines = faas(data, "versions", "versioned").stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["v2", "v1"] and lines[0].endswith("current")
    assert json.loads(faas(data, "rollback", "versioned", "1").stdout)["version"] == 1
    assert json.loads(faas(data, "invoke", "versioned").stdout)["result"] == 1
    record = json.loads(faas(data, "invoke", "versioned", "--version", "2").stdout)
    assert record["result"] == 2 and record["version"] == 2
    missing = faas(data, "rollback", "versioned", "7", check=False)
    assert missing.returncode == 1 and "no version 7" in missing.stderr


def test_deploys_a_folder_with_requirements_under_another_name(tmp_path):
    from make_wheel import make_wheel
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "clidep", "2.0", "5")
    folder = tmp_path / "fn"
    folder.mkdir()
    (folder / "func.py").write_text("import clidep\ndef main():\n    return clidep.VALUE\n")
    (folder / "requirements.txt").write_text("clidep==2.0\n")
    env = dict(os.environ, PYTHONPATH=str(PACKAGE_DIR), PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheels))
    data = tmp_path / "data"
    subprocess.run(["/usr/bin/python3", "-m", "libfaas", "--data-dir", str(data), "deploy", str(folder),
                    "--name", "withdep"], check=True, env=env, capture_output=True)
    assert json.loads(faas(data, "invoke", "withdep").stdout)["result"] == 5


def test_logs_follow_prints_records_made_by_another_process(tmp_path):
    data = tmp_path / "data"
    faas(data, "deploy", str(REPO / "examples" / "functions" / "calculadora"))
    env = dict(os.environ, PYTHONPATH=str(PACKAGE_DIR))
    follower = subprocess.Popen(["/usr/bin/python3", "-m", "libfaas", "--data-dir", str(data), "logs",
                                 "calculadora", "--follow", "--interval", "0.1"],
                                stdout=subprocess.PIPE, text=True, env=env)
    try:
        faas(data, "invoke", "calculadora", "3", "4", "--request-id", "followed")
        line = follower.stdout.readline()
        assert json.loads(line)["request_id"] == "followed"
    finally:
        follower.kill()
        follower.wait()


def test_bad_input_exits_with_one_clear_line(tmp_path):
    result = faas(tmp_path, "deploy", str(tmp_path / "nowhere"), check=False)
    assert result.returncode != 0 and "func.py does not exist" in result.stderr
    result = faas(tmp_path, "invoke", "x", "--args", "{", check=False)
    assert result.returncode != 0 and "--args is not JSON" in result.stderr


def test_an_original_servers_folder_imports_completely(tmp_path):
    """The layout the original Flask and paho-mqtt servers kept, made here: two functions (one with
    requirements.txt, empty but for a comment), their list, and their logs with the original records' fields."""
    old = tmp_path / "old-server"
    for name, code in [("calc", "def main(a, b):\n    return a + b\n"), ("hello", "def main():\n    return 'hi'\n")]:
        (old / "functions" / name).mkdir(parents=True)
        (old / "functions" / name / "func.py").write_text(code)
    (old / "functions" / "hello" / "requirements.txt").write_text("# nothing needed\n")
    (old / "data").mkdir()
    (old / "data" / "functions.json").write_text(json.dumps({
        "calc": {"name": "calc", "created_at": "2025-10-01 09:00:00.000000"},
        "hello": {"name": "hello"},
        "ghost": {"name": "ghost"}}))  # listed, but its folder is gone
    calc_records = [
        {"id": "c1a4b8e0-0000-4000-8000-000000000001", "function": "calc", "args": [1, 2], "result": 3,
         "status": "success", "time_start": "2025-10-09 12:40:00.123456", "time_end": "2025-10-09 12:40:00.123500",
         "duration_ms": 0.044, "request_id": "r-1", "stdout": ""},
        {"id": "c1a4b8e0-0000-4000-8000-000000000002", "function": "calc", "args": [1, "x"], "status": "error",
         "error": "unsupported operand type(s) for +: 'int' and 'str'", "error_type": "TypeError",
         "time_start": "2025-10-09 12:41:00.000001", "time_end": "2025-10-09 12:41:00.000100",
         "duration_ms": 0.099, "request_id": "r-2", "stdout": ""},
    ]
    # Newest first in the file: the import places records by their time_start, not by their order here.
    (old / "data" / "logs.json").write_text(json.dumps({"calc": calc_records[::-1], "hello": [], "ghost": [{}]}))
    data = tmp_path / "data"
    report = faas(data, "import", str(old)).stdout
    assert "imported calc: version 1, 2 of 2 records added" in report
    assert "imported hello: version 1, 0 of 0 records added" in report
    assert "skipped ghost: no functions/ghost/func.py" in report
    assert "2 functions imported, 1 items skipped" in report

    lines = faas(data, "logs", "calc", "--limit", "0").stdout.splitlines()
    assert [json.loads(line) for line in lines] == calc_records  # every field as it was, oldest first
    assert json.loads(faas(data, "invoke", "calc", "2", "3").stdout)["result"] == 5
    assert json.loads(faas(data, "invoke", "hello").stdout)["result"] == "hi"
    lines = faas(data, "logs", "calc", "--limit", "0").stdout.splitlines()
    assert json.loads(lines[-1])["args"] == [2, 3], "new records come after the imported ones"

    again = faas(data, "import", str(old)).stdout  # a second run adds nothing
    assert "imported calc: version 1, 0 of 2 records added (the others were there already)" in again
    assert len(faas(data, "logs", "calc", "--limit", "0").stdout.splitlines()) == len(lines)

    not_a_server = faas(data, "import", str(tmp_path / "nothing"), check=False)
    assert not_a_server.returncode != 0 and "not an original server's folder" in not_a_server.stderr


def test_invoke_stream_prints_each_chunk_then_the_record(tmp_path):
    folder = tmp_path / "count"
    folder.mkdir()
    (folder / "func.py").write_text("def main(n):\n    for i in range(n):\n        yield i * i\n")
    data = tmp_path / "data"
    faas(data, "deploy", str(folder))
    lines = faas(data, "invoke", "count", "3", "--stream").stdout.strip().split("\n", 3)
    assert [json.loads(line) for line in lines[:3]] == [0, 1, 4]
    record = json.loads(lines[3])
    assert record["result"] == [0, 1, 4] and record["chunks"] == 3


def test_the_cli_works_on_a_cluster_store(postgres, tmp_path):
    store = postgres.database()
    folder = REPO / "examples" / "functions" / "calculadora"
    faas(tmp_path / "one", "--store", store, "deploy", str(folder))
    record = json.loads(faas(tmp_path / "two", "--store", store, "invoke", "calculadora", "1", "2").stdout)
    assert record["result"] == 3 and "node" in record
    assert faas(tmp_path / "three", "--store", store, "list").stdout.startswith("calculadora\tv1\t")
