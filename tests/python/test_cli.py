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
