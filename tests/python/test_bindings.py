"""libfaas.Engine from Python: the lifecycle, records, errors, threads and the GIL, requirements, reopening."""
import contextlib
import io
import os
import subprocess
import threading
import time

import pytest

import libfaas
from conftest import BUILD, PACKAGE_DIR
from gate import GATED_GENERATOR, Gate
from make_wheel import make_wheel

ADD = "def main(a, b):\n    return a + b\n"
RECORD_KEYS = {"id", "function", "version", "args", "result", "status", "time_start", "time_end", "duration_ms",
               "request_id", "stdout"}
ERROR_KEYS = RECORD_KEYS - {"result"} | {"error", "error_type", "traceback"}
TIME_FORMAT = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$"


def test_lifecycle_upload_info_list_invoke_logs_delete(engine):
    info = engine.upload("calc", code=ADD, requirements=None)
    assert info["name"] == "calc" and info["version"] == 1 and info["has_requirements"] is False
    assert engine.info("calc")["code_sha256"] == info["code_sha256"]
    assert [f["name"] for f in engine.list()] == ["calc"]

    record = engine.invoke("calc", [10, 20])
    assert record["status"] == "success" and record["result"] == 30

    assert engine.upload("calc", code=b"def main(a, b):\n    return a * b\n")["version"] == 2
    assert engine.invoke("calc", (10, 20))["result"] == 200
    assert [r["result"] for r in engine.logs("calc", limit=10)] == [30, 200]
    assert engine.record(record["id"]) == record

    engine.delete("calc")
    assert engine.list() == []
    with pytest.raises(libfaas.FunctionNotFound):
        engine.invoke("calc", [1, 2])
    with pytest.raises(libfaas.FunctionNotFound):
        engine.logs("calc")


def test_follow_gives_records_as_they_commit_and_resumes_after_an_id(engine):
    engine.upload("calc", code=ADD)
    engine.upload("other", code=ADD)
    follower = engine.follow("calc")
    everything = engine.follow()
    first = [engine.invoke("calc", [i, 1])["id"] for i in range(3)]
    engine.invoke("other", [0, 0])
    assert [next(follower)["id"] for _ in range(3)] == first
    assert [next(everything)["function"] for _ in range(4)] == ["calc"] * 3 + ["other"]
    assert engine.stats()["functions"]["calc"]["hour"]["calls"] == 3
    follower.close()
    with pytest.raises(StopIteration):
        next(follower)

    # A follower made in another thread waits for the record; after=ID replays what came since.
    got = []
    waiter = threading.Thread(target=lambda: got.append(next(engine.follow("calc", after=first[0]))))
    waiter.start()
    waiter.join(10)
    assert got and got[0]["id"] == first[1]


def test_records_have_the_contract_shape(engine):
    engine.upload("calc", ADD)
    record = engine.invoke("calc", [10, 20], request_id="r-1")
    assert set(record) == RECORD_KEYS
    assert record["function"] == "calc" and record["args"] == [10, 20] and record["request_id"] == "r-1"
    assert record["time_start"] <= record["time_end"]
    for key in ("time_start", "time_end"):
        assert __import__("re").match(TIME_FORMAT, record[key])
    assert isinstance(record["duration_ms"], float) and record["stdout"] == ""
    assert len(engine.invoke("calc", [1, 2])["request_id"]) == 36  # a generated uuid4

    engine.upload("div", "def main(a, b):\n    print('dividing')\n    return a / b\n")
    failed = engine.invoke("div", [1, 0])
    assert set(failed) == ERROR_KEYS
    assert failed["status"] == "error" and failed["error_type"] == "ZeroDivisionError"
    assert failed["error"] == "division by zero" and "Traceback" in failed["traceback"]
    assert failed["stdout"] == "dividing\n"
    assert engine.logs("div") == [failed]


def test_arguments_keep_their_values(engine):
    engine.upload("echo", "def main(*args, **kwargs):\n    return [args, kwargs]\n")
    big = 2**100
    record = engine.invoke("echo", [big, 1.5, "é", None, True, {"k": [1]}], kwargs={"x": -big})
    assert record["result"] == [[big, 1.5, "é", None, True, {"k": [1]}], {"x": -big}]
    assert record["kwargs"] == {"x": -big}


def test_each_error_is_its_exception(engine):
    for cls in (libfaas.FunctionNotFound, libfaas.InvalidName, libfaas.InvalidInput, libfaas.BuildError,
                libfaas.Overloaded, libfaas.ShuttingDown):
        assert issubclass(cls, libfaas.Error)
    assert issubclass(libfaas.FunctionNotFound, LookupError) and issubclass(libfaas.InvalidName, ValueError)

    with pytest.raises(libfaas.FunctionNotFound, match="nope"):
        engine.invoke("nope")
    for name in ("../x", "", "a" * 65, "a/b"):
        with pytest.raises(libfaas.InvalidName):
            engine.upload(name, ADD)
        with pytest.raises(libfaas.InvalidName):
            engine.invoke(name)
    with pytest.raises(libfaas.BuildError, match="SyntaxError"):
        engine.upload("broken", "def main(:\n")
    with pytest.raises(libfaas.BuildError, match="no callable main"):
        engine.upload("nomain", "x = 1\n")
    with pytest.raises(libfaas.InvalidInput):
        libfaas.Engine(data_dir=engine.data_dir, isolation="container")
    with pytest.raises(TypeError):
        engine.invoke("calc", args={1, 2})
    with pytest.raises(TypeError):
        engine.upload("calc", 42)


def test_overloaded_when_the_queue_is_full(tmp_path):
    with libfaas.Engine(data_dir=str(tmp_path), max_concurrency=1, max_queue=1) as engine:
        engine.upload("slow", "import time\ndef main():\n    time.sleep(0.5)\n")
        outcomes = []

        def call():
            try:
                outcomes.append(engine.invoke("slow")["status"])
            except libfaas.Overloaded:
                outcomes.append("overloaded")

        threads = [threading.Thread(target=call) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert outcomes.count("success") == 2 and outcomes.count("overloaded") == 4


def test_a_closed_engine_refuses_calls(tmp_path):
    engine = libfaas.Engine(data_dir=str(tmp_path))
    engine.upload("calc", ADD)
    engine.close()
    engine.close()  # idempotent
    assert engine.closed and "closed" in repr(engine)
    with pytest.raises(libfaas.ShuttingDown):
        engine.invoke("calc", [1, 2])


def test_timeout_gives_a_timeout_record(tmp_path):
    with libfaas.Engine(data_dir=str(tmp_path), timeout=0.3) as engine:
        engine.upload("spin", "def main():\n    while True:\n        pass\n")
        started = time.monotonic()
        record = engine.invoke("spin")
        assert record["status"] == "error" and record["error_type"] == "Timeout"
        assert time.monotonic() - started < 3


def test_eight_threads_times_500_invocations_all_in_the_logs(engine):
    engine.upload("calc", ADD)
    ids = [[] for _ in range(8)]
    errors = []

    def run(n):
        try:
            for i in range(500):
                record = engine.invoke("calc", [n, i], request_id=f"{n}-{i}")
                assert record["result"] == n + i
                ids[n].append(record["id"])
        except BaseException as e:  # noqa: B902 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    logged = engine.logs("calc", limit=0)
    assert len(logged) == 4000
    assert {r["id"] for r in logged} == {i for chunk in ids for i in chunk}
    assert {r["request_id"] for r in logged} == {f"{n}-{i}" for n in range(8) for i in range(500)}


def test_the_gil_is_released_while_a_function_sleeps(engine):
    engine.upload("nap", "import time\ndef main():\n    time.sleep(0.5)\n    return 'rested'\n")
    engine.invoke("nap")  # loaded and warm
    results = []
    threads = [threading.Thread(target=lambda: results.append(engine.invoke("nap")["result"])) for _ in range(2)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    assert results == ["rested", "rested"]
    assert elapsed < 0.85, f"two 0.5 s calls took {elapsed:.2f} s together"


def test_python_threads_run_while_the_engine_waits(engine):
    engine.upload("nap", "import time\ndef main():\n    time.sleep(0.4)\n")
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.01)

    thread = threading.Thread(target=ticker)
    thread.start()
    engine.invoke("nap")
    stop.set()
    thread.join()
    assert len(ticks) >= 20


def test_output_is_captured_even_when_the_caller_redirects_stdout(engine):
    engine.upload("talk", "def main(word):\n    print(word)\n    return len(word)\n")
    mine = io.StringIO()
    with contextlib.redirect_stdout(mine):
        record = engine.invoke("talk", ["hello"])
        print("mine")
    assert record["stdout"] == "hello\n"
    assert mine.getvalue() == "mine\n"


def test_requirements_from_a_wheel_made_now(engine, tmp_path, monkeypatch):
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "pydep", "1.0", "7")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    info = engine.upload("dep", "import pydep\ndef main(x):\n    return [pydep.VERSION, pydep.VALUE * x]\n",
                         requirements="pydep==1.0\n")
    assert info["has_requirements"] and info["env_id"]
    assert engine.invoke("dep", [6])["result"] == ["1.0", 42]
    with pytest.raises(libfaas.BuildError, match="No matching distribution"):
        engine.upload("dep", "def main():\n    pass\n", requirements="absent-package==9\n")
    assert engine.invoke("dep", [1])["result"] == ["1.0", 7]


def test_reopening_keeps_functions_and_logs(tmp_path):
    data = str(tmp_path / "data")
    with libfaas.Engine(data_dir=data) as engine:
        engine.upload("calc", ADD)
        first = [engine.invoke("calc", [i, i]) for i in range(5)]
    with libfaas.Engine(data_dir=data) as engine:
        assert [f["name"] for f in engine.list()] == ["calc"]
        assert engine.logs("calc") == first
        assert engine.invoke("calc", [2, 3])["result"] == 5
        assert len(engine.logs("calc")) == 6


def test_status_has_the_server_shape(engine):
    engine.upload("calc", ADD)
    engine.invoke("calc", [1, 2])
    status = engine.status()
    assert status["status"] == "running" and status["loaded_functions"] == 1
    assert status["isolation"] == "inprocess"
    for key in ("uptime", "cpu_percent", "ram_percent", "timestamp", "system_memory_info"):
        assert key in status


def test_help_and_stubs_describe_the_engine():
    text = subprocess.run(["/usr/bin/python3", "-c", "import libfaas; help(libfaas.Engine)"], capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH=str(PACKAGE_DIR), PAGER="cat"),
                          check=True).stdout
    for word in ("upload", "invoke", "logs", "status", "close", "data_dir", "FunctionNotFound"):
        assert word in text
    assert (PACKAGE_DIR / "libfaas" / "_core.pyi").is_file() and (PACKAGE_DIR / "libfaas" / "py.typed").is_file()


def test_the_module_does_not_link_libpython():
    module = next((PACKAGE_DIR / "libfaas").glob("_core*.so"))
    libraries = subprocess.run(["ldd", str(module)], capture_output=True, text=True, check=True).stdout
    assert "libpython" not in libraries


def test_installs_into_a_virtualenv(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(venv)], check=True)
    subprocess.run(["cmake", "--install", str(BUILD), "--component", "python", "--prefix", str(venv)],
                   check=True, capture_output=True)
    script = ("import libfaas, sys\n"
              "with libfaas.Engine(data_dir=sys.argv[1]) as e:\n"
              "    e.upload('calc', 'def main(a, b):\\n    return a + b\\n')\n"
              "    print(e.invoke('calc', [20, 22])['result'], libfaas.__file__)\n")
    out = subprocess.run([str(venv / "bin" / "python"), "-c", script, str(tmp_path / "data")], capture_output=True,
                         text=True, check=True, cwd=tmp_path).stdout.split()
    assert out[0] == "42" and out[1].startswith(str(venv))


def test_process_isolation_contains_a_crash(tmp_path):
    with libfaas.Engine(data_dir=str(tmp_path), isolation="process", timeout=2) as engine:
        assert engine.isolation == "process"
        engine.upload("calc", ADD)
        engine.upload("crash", "import os\ndef main():\n    os._exit(7)\n")
        record = engine.invoke("crash")
        assert record["status"] == "error" and record["error_type"] == "WorkerCrashed"
        assert "exited with code 7" in record["error"]
        assert engine.invoke("calc", [1, 2])["result"] == 3
        assert engine.status()["isolation"] == "process"


def test_workers_outlive_the_threads_that_uploaded_them(tmp_path):
    # A worker dies with the thread that started it (PR_SET_PDEATHSIG), so the engine must start them itself.
    with libfaas.Engine(data_dir=str(tmp_path), isolation="process") as engine:
        for i in range(3):
            uploader = threading.Thread(target=engine.upload, args=(f"f{i}", ADD))
            uploader.start()
            uploader.join()
        time.sleep(0.2)
        for i in range(3):
            record = engine.invoke(f"f{i}", [i, 1])
            assert record["status"] == "success" and record["result"] == i + 1, record


def test_settings_read_change_and_reach_the_function(tmp_path):
    code = "import os\ndef main():\n    return [os.environ.get('MODE'), os.environ.get('TOKEN')]\n"
    with libfaas.Engine(data_dir=str(tmp_path), isolation="process", timeout=2) as engine:
        engine.upload("env", code, settings={"env": {"MODE": "fast"}})
        assert engine.invoke("env")["result"] == ["fast", None]
        view = engine.settings("env", secrets={"TOKEN": "s3cret"}, is_public=True, timeout=1.5)
        assert view["secrets"] == ["TOKEN"] and view["public"] is True and view["timeout"] == 1.5
        assert "s3cret" not in repr(view) and "s3cret" not in repr(engine.settings("env"))
        assert engine.invoke("env")["result"] == ["fast", "s3cret"]
        assert engine.settings("env", timeout=None)["timeout"] == 2
        with pytest.raises(libfaas.InvalidInput, match="unknown setting"):
            engine.settings("env", colour="blue")
        with pytest.raises(libfaas.FunctionNotFound):
            engine.settings("nope")
        with pytest.raises(TypeError):
            engine.upload("x", code, settings=["not", "a", "dict"])


def test_versions_rollback_and_pinned_calls(engine):
    for v in (1, 2, 3):
        assert engine.upload("versioned", f"def main():\n    return {v}\n")["version"] == v
    assert [v["version"] for v in engine.versions("versioned")] == [3, 2, 1]
    assert engine.rollback("versioned", 1)["version"] == 1
    record = engine.invoke("versioned")
    assert record["result"] == 1 and record["version"] == 1
    record = engine.invoke("versioned", version=2)
    assert record["result"] == 2 and record["version"] == 2
    with pytest.raises(libfaas.FunctionNotFound, match="no version 9"):
        engine.invoke("versioned", version=9)
    with pytest.raises(libfaas.FunctionNotFound):
        engine.rollback("versioned", 9)
    with pytest.raises(ValueError):
        engine.invoke("versioned", version=0)


def test_a_schedule_fires_on_a_driven_clock(engine):
    import datetime
    engine.upload("tick", "def main(label):\n    return label\n",
                  settings={"schedule": [{"cron": "30 9 * * *", "args": ["morning"]}]})
    nine_thirty = datetime.datetime(2026, 11, 30, 9, 30, 15).timestamp()
    assert engine.run_schedules(nine_thirty - 60) == []
    (invocation,) = engine.run_schedules(nine_thirty)
    assert engine.run_schedules(nine_thirty) == []  # once per tick
    for _ in range(200):
        record = engine.record(invocation)
        if record:
            break
        time.sleep(0.01)
    assert record["trigger"] == "schedule" and record["result"] == "morning"


def test_stream_gives_each_chunk_before_the_function_ends_then_the_record(engine):
    engine.upload("gen", code=GATED_GENERATOR)
    gate = Gate()
    try:
        chunks = engine.stream("gen", [gate.port])
        assert next(chunks) == 1  # the function waits at the gate
        gate.open()
        assert list(chunks) == [2]
        assert chunks.record["result"] == [1, 2] and chunks.record["chunks"] == 2
    finally:
        gate.close()
    engine.upload("calc", code=ADD)
    returned = engine.stream("calc", [1, 2])
    assert list(returned) == [] and returned.record["result"] == 3


def test_engines_sharing_a_postgresql_store_see_one_registry_and_one_log(postgres, tmp_path):
    store = postgres.database()
    with libfaas.Engine(data_dir=str(tmp_path / "a"), store=store, node_id="py-a") as a, \
            libfaas.Engine(data_dir=str(tmp_path / "b"), store=store, node_id="py-b") as b:
        a.upload("add", "def main(x, y):\n    return x + y\n")
        # b reads the shared registry at its first miss, without waiting for the notification.
        assert b.invoke("add", [2, 3])["result"] == 5
        assert b.invoke("add", [2, 3])["node"] == "py-b"
        assert a.invoke("add", [1, 1])["node"] == "py-a"
        assert sorted(record["node"] for record in a.logs("add")) == ["py-a", "py-b", "py-b"]
        assert {node["id"] for node in b.nodes()} == {"py-a", "py-b"}
        assert b.status()["store"] == "postgresql"
        # Records made elsewhere are kept once, wherever they are imported.
        record = {"function": "add", "status": "success", "result": 1, "time_start": "2024-01-01 00:00:00.000000"}
        assert a.import_records("add", [record]) == 1 and b.import_records("add", [record]) == 0
    with pytest.raises(libfaas.StoreUnavailable, match="cannot connect to PostgreSQL"):
        libfaas.Engine(data_dir=str(tmp_path / "c"), store="postgresql://postgres@127.0.0.1:1/none")
