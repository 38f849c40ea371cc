"""A hostile function against faas-http's default settings (process isolation, sandboxed workers): each attempt
ends in an error or a clean record, the server keeps serving, and another function keeps answering."""
import os
import pathlib
import shutil
import subprocess
import tempfile
import time

import pytest

import conftest

HOSTILE = '''
import ctypes, os, socket, subprocess, threading

CALLS = [0]  # calls this worker has run

def attempt(action):
    try:
        action()
        return "done"
    except Exception as e:
        return type(e).__name__

def main(kind, arg=None):
    if kind == "read":
        return attempt(lambda: open(arg, "rb").read(1))
    if kind == "list":
        return attempt(lambda: os.listdir(arg))
    if kind == "write":
        return attempt(lambda: open(arg, "wb").write(b"x"))
    if kind == "kill":
        return attempt(lambda: os.kill(int(arg), 9))
    if kind == "forks":
        started = 0
        for _ in range(3000):
            try:
                if os.fork() == 0:
                    import time
                    time.sleep(30)
                    os._exit(0)
                started += 1
            except OSError:
                break
        return started
    if kind == "fill":
        written = 0
        try:
            with open("/tmp/big", "wb") as f:
                for _ in range(2048):
                    f.write(b"x" * (1 << 20))
                    f.flush()
                    written += 1
        except OSError as e:
            return [written, type(e).__name__]
        return [written, "done"]
    if kind == "ptrace":
        libc = ctypes.CDLL(None, use_errno=True)
        return [libc.ptrace(0, 0, None, None), ctypes.get_errno()]
    if kind == "daemon":
        return subprocess.Popen(["sleep", "301"], start_new_session=True).pid
    if kind == "procs":  # the processes in its PID namespace that still run (zombies do not)
        def running(pid):
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        return sorted(int(p) for p in os.listdir("/proc") if p.isdigit() and running(p))
    if kind == "connect":
        return attempt(lambda: socket.create_connection(("127.0.0.1", int(arg)), timeout=3).close())
    if kind == "interfaces":
        return [name for _, name in socket.if_nameindex()]
    if kind == "environ":
        return dict(os.environ)
    if kind == "calls":
        CALLS[0] += 1
        return CALLS[0]
    if kind == "spinning-thread":
        threading.Thread(target=lambda: [None for _ in iter(int, 1)], daemon=True).start()
        return "started"
'''

ADD = "def main(a, b):\n    return a + b\n"


def start(start_http, *args, **kwargs):
    server = start_http(*args, password=None, env={"SERVER_ONLY_SECRET": "do-not-leak"}, **kwargs)
    server.upload("hostile", HOSTILE)
    server.upload("calc", ADD)
    return server


def run(server, *args):
    response = server.invoke("hostile", *args)
    assert response.status_code == 200, response.text
    record = response.json()
    assert record["status"] == "success", record
    return record["result"]


def still_serving(server):
    assert server.get("/healthz").status_code == 200
    response = server.invoke("calc", 2, 3)
    assert response.status_code == 200 and response.json()["result"] == 5, response.text


def worker_pids():
    """Host pids of every faas-worker process."""
    pids = []
    for entry in pathlib.Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"faas-worker" in (entry / "cmdline").read_bytes().split(b"\0")[0]:
                pids.append(int(entry.name))
        except OSError:
            pass
    return pids


def test_a_function_reads_nothing_of_the_server(start_http):
    server = start(start_http)
    data = server.data_dir.resolve()
    assert (data / "http-password").exists() and (data / "faas.db").exists()
    for path in [data / "faas.db", data / "http-password", data / "functions" / "calc" / "func.py",
                 f"/proc/{server.process.pid}/environ", "/etc/shadow", "/root/.bash_history"]:
        assert run(server, "read", str(path)) != "done", path
    for folder in [data, data / "functions", data / "envs", "/root", "/home"]:
        assert run(server, "list", str(folder)) != "done", folder
    # Its own code it may read, and what Python and TLS need of /etc.
    assert run(server, "read", str(data / "functions" / "hostile" / "func.py")) == "done"
    assert run(server, "read", "/etc/ld.so.cache") == "done"
    environment = run(server, "environ")
    assert "SERVER_ONLY_SECRET" not in environment and "FAAS_HTTP_PASSWORD" not in environment, environment
    still_serving(server)


def test_a_function_writes_nowhere_outside_its_tmp(start_http):
    server = start(start_http)
    data = server.data_dir.resolve()
    for path in [data / "functions" / "hostile" / "func.py", data / "functions" / "calc" / "func.py",
                 data / "faas.db", data / "planted", "/usr/lib/planted", "/etc/planted", "/planted"]:
        assert run(server, "write", str(path)) != "done", path
    assert (data / "functions" / "calc" / "func.py").read_text() == ADD
    assert not (data / "planted").exists()
    assert run(server, "write", "/tmp/scratch") == "done"
    # 2 GiB do not fit: its /tmp is small, and so is the largest file it may write.
    written, error = run(server, "fill")
    assert written <= 64 and error == "OSError", (written, error)
    still_serving(server)


def test_a_function_cannot_signal_or_trace_anyone(start_http):
    server = start(start_http)
    assert server.invoke("calc", 1, 1).status_code == 200  # calc's worker is up
    others = worker_pids()
    assert others
    for pid in [server.process.pid, *others]:
        assert run(server, "kill", pid) == "ProcessLookupError", pid
    # ptrace is refused by the seccomp filter.
    assert run(server, "ptrace") == [-1, 1]
    assert server.process.poll() is None
    still_serving(server)


def test_a_fork_bomb_stops_small_and_nothing_outlives_its_call(start_http):
    server = start(start_http)
    started = run(server, "forks")
    assert started < 100, started
    still_serving(server)
    # Its children (and a daemon that left its session) are gone once the call has answered.
    run(server, "daemon")
    assert run(server, "procs") == [1]  # the worker, first process of its PID namespace, alone
    assert subprocess.run(["pgrep", "-f", "^sleep 301$"], capture_output=True).returncode == 1
    still_serving(server)


def test_a_thread_left_running_after_a_call_goes_with_its_worker(start_http):
    server = start(start_http)
    first = run(server, "calls")
    assert run(server, "calls") == first + 1  # one warm worker serves both
    assert run(server, "spinning-thread") == "started"
    assert run(server, "calls") == 1  # a fresh worker: the spinning thread is gone with the old one
    assert "left threads running" in server.log()
    # Threads a function starts at import are its own: its worker stays warm.
    server.upload("pooled", "import threading, time\nthreading.Thread(target=time.sleep, args=(600,), daemon=True)"
                            ".start()\nCALLS = [0]\ndef main():\n    CALLS[0] += 1\n    return CALLS[0]\n")
    assert [server.invoke("pooled").json()["result"] for _ in range(3)] == [1, 2, 3]
    # Deleting the function ends its worker, and its thread with it.
    workers = len(worker_pids())
    assert server.delete("/admin/functions/pooled").status_code == 200
    deadline = time.monotonic() + 5
    while len(worker_pids()) >= workers and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(worker_pids()) < workers
    still_serving(server)


def test_network_none_leaves_a_function_only_its_own_loopback(start_http):
    server = start(start_http, "--function-network", "none")
    assert run(server, "interfaces") == ["lo"]
    assert run(server, "connect", server.port) == "ConnectionRefusedError"
    still_serving(server)
    # With the host's network (the default), the same call reaches the server.
    host = start(start_http, data_dir=server.data_dir.parent / "host")
    assert run(host, "connect", host.port) == "done"


def test_a_function_s_network_setting_overrides_the_server_s(start_http):
    server = start(start_http)  # the host's network by default
    server.upload("isolated", HOSTILE, settings={"network": "none"})
    assert server.invoke("isolated", "interfaces").json()["result"] == ["lo"]
    assert run(server, "connect", server.port) == "done"
    server.settings("hostile", {"network": "none"})  # no upload: the next call gets a fresh worker
    assert run(server, "connect", server.port) == "ConnectionRefusedError"
    server.settings("hostile", {"network": None})
    assert run(server, "connect", server.port) == "done"
    still_serving(server)


def test_a_function_s_environment_holds_its_own_variables_and_secrets_and_none_of_the_server_s(start_http):
    server = start(start_http)
    server.upload("neighbour", HOSTILE)
    secret = "t0ken-" + os.urandom(8).hex()
    view = server.settings("hostile", {"env": {"MODE": "fast"}, "secrets": {"API_TOKEN": secret}})
    assert view["env"] == {"MODE": "fast"} and view["secrets"] == ["API_TOKEN"]
    environment = run(server, "environ")
    assert environment["MODE"] == "fast" and environment["API_TOKEN"] == secret
    assert "SERVER_ONLY_SECRET" not in environment and "FAAS_HTTP_PASSWORD" not in environment, environment
    # A co-tenant sees none of them, nor can it read them from the other's worker.
    neighbour = server.invoke("neighbour", "environ").json()["result"]
    assert "API_TOKEN" not in neighbour and "MODE" not in neighbour
    processes = server.invoke("neighbour", "procs").json()["result"]
    assert len(processes) <= 3, processes  # its own PID namespace: the other worker is not there to read
    # The value shows nowhere the server shows things: settings, lists, infos, the access log, the files.
    for path in ["/admin/functions", "/admin/functions/hostile", "/admin/functions/hostile/settings",
                 "/admin/logs/neighbour", "/metrics"]:
        assert secret not in server.get(path).text, path
    assert secret not in server.log()
    for file in server.data_dir.rglob("*"):
        if file.is_file() and file.name not in ("faas.db", "faas.db-wal"):
            assert secret.encode() not in file.read_bytes(), file
    assert oct((server.data_dir / "faas.db").stat().st_mode & 0o777) == "0o600"
    # Secrets stay through uploads, and go when removed.
    server.upload("hostile", HOSTILE + "\n# v2\n")
    assert run(server, "environ")["API_TOKEN"] == secret
    server.settings("hostile", {"secrets": {"API_TOKEN": None}, "env": {"MODE": None}})
    environment = run(server, "environ")
    assert "API_TOKEN" not in environment and "MODE" not in environment
    still_serving(server)


AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]


@pytest.fixture
def nobody_dir():
    """A directory the user nobody owns, outside pytest's (root-only) temporary tree."""
    if os.geteuid() != 0:
        pytest.skip("run as an ordinary user, every test here already takes the unprivileged path")
    program = conftest.BUILD / "frontends" / "http" / "faas-http"
    if subprocess.run([*AS_NOBODY, "test", "-x", str(program)]).returncode != 0:
        pytest.skip(f"the user nobody cannot run {program} (a build tree in a private directory)")
    directory = pathlib.Path(tempfile.mkdtemp(prefix="faas-nobody-"))
    (directory / "data").mkdir()
    for path in [directory, directory / "data"]:
        os.chown(path, 65534, 65534)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def test_a_server_that_is_not_root_confines_workers_in_a_user_namespace(start_http, nobody_dir):
    server = start(start_http, data_dir=nobody_dir / "data", prefix=AS_NOBODY)
    data = server.data_dir
    for path in [data / "faas.db", data / "functions" / "calc" / "func.py",
                 f"/proc/{server.process.pid}/environ"]:
        assert run(server, "read", str(path)) != "done", path
    # A data dir under /tmp shows, inside, only the function's folder in the worker's private /tmp: whatever it
    # writes there never reaches the real one.
    run(server, "write", str(data / "planted"))
    assert not (data / "planted").exists()
    assert run(server, "kill", server.process.pid) != "done"
    assert run(server, "ptrace") != [0, 0]
    assert run(server, "forks") < 100
    assert "SERVER_ONLY_SECRET" not in run(server, "environ")
    still_serving(server)


def test_without_the_sandbox_the_server_warns(start_http):
    server = start_http("--no-sandbox")
    assert "without the sandbox" in server.log()
    server.upload("calc", ADD)
    assert server.invoke("calc", 1, 2).json()["result"] == 3


BACKEND = '''
import base64, hashlib, os, zipfile

def attempts():
    out = {}
    def attempt(name, action):
        try:
            action()
            out[name] = "done"
        except Exception as e:
            out[name] = type(e).__name__
    attempt("read faas.db", lambda: open(DATA + "/faas.db", "rb").read(1))
    attempt("read http-password", lambda: open(DATA + "/http-password").read())
    attempt("list functions", lambda: os.listdir(DATA + "/functions"))
    attempt("write the data dir", lambda: open(DATA + "/planted", "w").write("x"))
    attempt("write calc", lambda: open(DATA + "/functions/calc/func.py", "w").write("x"))
    attempt("read /etc/shadow", lambda: open("/etc/shadow").read())
    attempt("kill the server", lambda: os.kill(SERVER, 9))
    return out

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    files = {"evil.py": "RESULTS = %r\\n" % attempts(),
             "evil-1.0.dist-info/METADATA": "Metadata-Version: 2.1\\nName: evil\\nVersion: 1.0\\n",
             "evil-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\\nGenerator: evil\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"}
    name = "evil-1.0-py3-none-any.whl"
    record = []
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as wheel:
        for path, text in files.items():
            data = text.encode()
            wheel.writestr(path, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{path},sha256={digest},{len(data)}")
        record.append("evil-1.0.dist-info/RECORD,,")
        wheel.writestr("evil-1.0.dist-info/RECORD", "\\n".join(record) + "\\n")
    return name
'''


def make_hostile_sdist(directory, data_dir, server_pid):
    """evil-1.0.tar.gz with an in-tree build backend that tries, while pip builds it, what a function may not."""
    import io
    import tarfile
    directory.mkdir(parents=True, exist_ok=True)
    members = {
        "evil-1.0/pyproject.toml": '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n',
        "evil-1.0/backend.py": f"DATA = {str(data_dir)!r}\nSERVER = {server_pid}\n" + BACKEND,
        "evil-1.0/PKG-INFO": "Metadata-Version: 2.1\nName: evil\nVersion: 1.0\n",
    }
    with tarfile.open(directory / "evil-1.0.tar.gz", "w:gz") as archive:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def test_a_requirement_s_build_backend_is_confined_too(start_http, tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    server = start_http(password=None, env={"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels)})
    server.upload("calc", ADD)
    data = server.data_dir.resolve()
    make_hostile_sdist(wheels, data, server.process.pid)
    server.upload("uses_evil", "import evil\n\ndef main():\n    return evil.RESULTS\n", "evil==1.0\n")
    results = server.invoke("uses_evil").json()["result"]
    assert len(results) == 7, results
    assert all(outcome != "done" for outcome in results.values()), results
    assert not (data / "planted").exists()
    assert (data / "functions" / "calc" / "func.py").read_text() == ADD
    still_serving(server)
