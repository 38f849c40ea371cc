"""Fixtures for the end-to-end tests: the real servers, started from the build tree on free ports."""
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("FAAS_BUILD_DIR", REPO / "build"))
sys.path.insert(0, str(REPO / "tests" / "helpers"))


class ServerProcess:
    """A server started from the build tree, its output in a log file, ready once it prints `ready`."""

    process = None
    log_path = None

    def launch(self, command, env, ready, timeout=20, wait=True):
        """Starts `command`; unless `wait` is false, returns the regex match of `ready` in its new output."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log, env=env)
        if not wait:
            return None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_bytes()[offset:].decode(errors="replace")
            found = re.search(ready, text)
            if found:
                return found
            if self.process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited with {self.process.returncode}:\n{text}")
            time.sleep(0.02)
        raise RuntimeError(f"{command[0]} did not print {ready!r}:\n" + self.log())

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


class HttpServer(ServerProcess):
    """A faas-http process on 127.0.0.1 and a free port, with its data dir and credentials."""

    def __init__(self, data_dir, *args, env=None, password="test-password", prefix=()):
        self.data_dir = pathlib.Path(data_dir)
        self.args = list(args)
        self.prefix = list(prefix)  # runs the server through it (setpriv, say)
        self.env = dict(os.environ)
        self.env.pop("FAAS_HTTP_PASSWORD", None)
        if password is not None:
            self.env["FAAS_HTTP_PASSWORD"] = password
        self.env.update(env or {})
        self.password = password

    def start(self, timeout=20):
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-faas-http.log"
        command = [*self.prefix, str(BUILD / "frontends" / "http" / "faas-http"), "--host", "127.0.0.1", "--port", "0",
                   "--data-dir", str(self.data_dir), *self.args]
        found = self.launch(command, self.env, r"listening on ([\d.]+):(\d+)", timeout)
        self.port = int(found.group(2))
        self.url = f"http://127.0.0.1:{self.port}"
        if self.password is None:
            self.password = (self.data_dir / "http-password").read_text().strip()
        return self

    @property
    def auth(self):
        return ("admin", self.password)

    def get(self, path, **kwargs):
        kwargs.setdefault("auth", self.auth)
        kwargs.setdefault("timeout", 30)
        return requests.get(self.url + path, **kwargs)

    def post(self, path, **kwargs):
        kwargs.setdefault("auth", self.auth)
        kwargs.setdefault("timeout", 60)
        return requests.post(self.url + path, **kwargs)

    def delete(self, path, **kwargs):
        kwargs.setdefault("auth", self.auth)
        kwargs.setdefault("timeout", 30)
        return requests.delete(self.url + path, **kwargs)

    def patch(self, path, **kwargs):
        kwargs.setdefault("auth", self.auth)
        kwargs.setdefault("timeout", 30)
        return requests.patch(self.url + path, **kwargs)

    def upload(self, name, code, requirements=None, settings=None):
        files = {"code": ("func.py", code)}
        if requirements is not None:
            files["requirements"] = ("requirements.txt", requirements)
        data = {"name": name}
        if settings is not None:
            data["settings"] = json.dumps(settings)
        response = self.post("/admin/upload", files=files, data=data)
        assert response.status_code == 200, response.text
        return response.json()

    def settings(self, name, changes=None):
        """The function's settings, after changing them when `changes` (a merge patch) is given."""
        path = f"/admin/functions/{name}/settings"
        response = self.get(path) if changes is None else self.patch(path, json=changes)
        assert response.status_code == 200, response.text
        return response.json()

    def invoke(self, name, *args, **kwargs):
        return self.post(f"/function/{name}", json={"args": list(args)}, **kwargs)


def starting(make):
    """The body of a start_* fixture: yields start(*args, **kwargs), which starts make(*args, **kwargs), and stops
    every server it started once the test is over."""
    servers = []

    def start(*args, **kwargs):
        server = make(*args, **kwargs)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def start_http(tmp_path):
    """Starts faas-http servers for one test and stops them after it: start_http(*args, data_dir=?, env=?)."""
    yield from starting(lambda *args, data_dir=None, env=None, password="test-password", prefix=():
                        HttpServer(data_dir or tmp_path / "data", *args, env=env, password=password, prefix=prefix))


@pytest.fixture(scope="module")
def http_server(tmp_path_factory):
    """One faas-http shared by a module's tests, with a 2 s read timeout for the slow-client test."""
    server = HttpServer(tmp_path_factory.mktemp("http") / "data", "--read-timeout", "2", "--timeout", "5").start()
    yield server
    assert server.stop() == 0, server.log()


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Broker:
    """A mosquitto on 127.0.0.1 and a free port, with TCP_NODELAY as docs/mqtt.md asks of every broker."""

    def __init__(self, directory, settings="allow_anonymous true\n"):
        self.directory = pathlib.Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.settings = settings
        self.process = None

    def start(self):
        conf = self.directory / "mosquitto.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\nset_tcp_nodelay true\npersistence false\n"
                        f"max_queued_messages 10000\n{self.settings}")
        log = open(self.directory / "mosquitto.log", "ab")
        self.process = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("mosquitto did not start")

    def stop(self, sig=signal.SIGTERM):
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(10)

    @property
    def uri(self):
        return f"tcp://127.0.0.1:{self.port}"


class MqttServer(ServerProcess):
    """A faas-mqtt process connected to a broker."""

    def __init__(self, broker, data_dir, *args, env=None, client_id="faas-test", uri=None):
        self.broker = broker
        self.uri = uri or broker.uri
        self.data_dir = pathlib.Path(data_dir)
        self.args = list(args)
        self.client_id = client_id
        self.env = {**os.environ, **(env or {})}

    def start(self, timeout=20, wait_connected=True):
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-{self.client_id}-faas-mqtt.log"
        command = [str(BUILD / "frontends" / "mqtt" / "faas-mqtt"), "--broker", self.uri, "--client-id",
                   self.client_id, "--data-dir", str(self.data_dir), *self.args]
        self.launch(command, self.env, "connected to ", timeout, wait=wait_connected)
        return self


@pytest.fixture
def broker(tmp_path):
    broker = Broker(tmp_path / "broker").start()
    yield broker
    broker.stop()


@pytest.fixture
def start_mqtt(tmp_path, broker):
    """Starts faas-mqtt servers for one test: start_mqtt(*args, data_dir=?, client_id=?, env=?)."""
    servers = []

    def start(*args, data_dir=None, client_id="faas-test", env=None, wait_connected=True):
        server = MqttServer(broker, data_dir or tmp_path / "data", *args, env=env, client_id=client_id)
        servers.append(server)
        return server.start(wait_connected=wait_connected)

    yield start
    for server in servers:
        server.stop()


class GrpcServer(ServerProcess):
    """A faas-grpc process on 127.0.0.1 and a free port, with a client holding the admin's credentials."""

    def __init__(self, data_dir, *args, env=None, password="test-password"):
        self.data_dir = pathlib.Path(data_dir)
        self.args = list(args)
        self.env = {**os.environ, "FAAS_HTTP_PASSWORD": password, **(env or {})}
        self.password = password
        self.channel = None

    def start(self, timeout=20):
        import grpc
        from grpc_client import FaasClient, basic
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-faas-grpc.log"
        command = [str(BUILD / "frontends" / "grpc" / "faas-grpc"), "--host", "127.0.0.1", "--port", "0",
                   "--data-dir", str(self.data_dir), *self.args]
        found = self.launch(command, self.env, r"listening on ([\d.]+):(\d+)", timeout)
        self.port = int(found.group(2))
        self.target = f"127.0.0.1:{self.port}"
        if "--tls-cert" not in self.args:
            self.channel = grpc.insecure_channel(self.target)
            self.client = FaasClient(self.channel, [basic("admin", self.password)])
        return self

    def stop(self, *args, **kwargs):
        if self.channel is not None:
            self.channel.close()
        return super().stop(*args, **kwargs)


@pytest.fixture
def start_grpc(tmp_path):
    """Starts faas-grpc servers for one test and stops them after it: start_grpc(*args, data_dir=?, env=?)."""
    yield from starting(lambda *args, data_dir=None, env=None: GrpcServer(data_dir or tmp_path / "data", *args, env=env))


class CoapServer(ServerProcess):
    """A faas-coap process on 127.0.0.1, free ports for coap:// and coaps://, the admin's key its password."""

    def __init__(self, data_dir, *args, env=None, password="test-password"):
        self.data_dir = pathlib.Path(data_dir)
        self.args = list(args)
        self.env = {**os.environ, "FAAS_HTTP_PASSWORD": password, **(env or {})}
        self.password = password

    def start(self, timeout=20):
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-faas-coap.log"
        command = [str(BUILD / "frontends" / "coap" / "faas-coap"), "--host", "127.0.0.1", "--port", "0",
                   "--dtls-port", "0", "--data-dir", str(self.data_dir), *self.args]
        found = self.launch(command, self.env, r"listening on [\d.]+:(\d+) \(coap\), [\d.]+:(\d+) \(coaps\)", timeout)
        self.port, self.dtls_port = int(found.group(1)), int(found.group(2))
        return self

    def url(self, path, dtls=True):
        return f"coaps://127.0.0.1:{self.dtls_port}{path}" if dtls else f"coap://127.0.0.1:{self.port}{path}"

    def client(self, method, path, payload=None, dtls=True, key=None, identity="admin", extra=(), timeout=20):
        """Runs coap-client (libcoap's, OpenSSL build); returns (stdout, stderr): an answer's payload, or its code and
        payload ("4.04 {...}") or the client's complaint."""
        command = ["coap-client-openssl", "-m", method, "-B", "5", *extra]
        if dtls:
            command += ["-u", identity, "-k", key or self.password]
        if payload is not None:
            command += ["-e", payload] if isinstance(payload, str) else ["-f", str(payload)]
        done = subprocess.run([*command, self.url(path, dtls)], capture_output=True, text=True, timeout=timeout)
        return done.stdout, done.stderr


@pytest.fixture
def start_coap(tmp_path):
    """Starts faas-coap servers for one test and stops them after it: start_coap(*args, data_dir=?, env=?)."""
    yield from starting(lambda *args, data_dir=None, env=None: CoapServer(data_dir or tmp_path / "data", *args, env=env))


@pytest.fixture(scope="session")
def postgres():
    """One real PostgreSQL for the session's cluster tests (tests/helpers/postgres.py); each test makes its own
    database with postgres.database()."""
    from postgres import Postgres
    server = Postgres().start()
    yield server
    server.remove()


class Haproxy:
    """A real HAProxy in the foreground on a free loopback port, balancing HTTP over `servers` (round robin, with
    health checks on /healthz), as docs/scaling.md sets it up."""

    def __init__(self, directory, servers):
        self.directory = pathlib.Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        lines = [f"    server {name} 127.0.0.1:{port} check inter 500ms fall 2 rise 1" for name, port in servers]
        (self.directory / "haproxy.cfg").write_text(
            "global\n    maxconn 2000\n"
            "defaults\n    mode http\n    timeout connect 2s\n    timeout client 60s\n    timeout server 60s\n"
            "    retries 2\n    option redispatch\n"
            f"frontend faas\n    bind 127.0.0.1:{self.port}\n    default_backend nodes\n"
            "backend nodes\n    balance roundrobin\n    option httpchk GET /healthz\n" + "\n".join(lines) + "\n")
        self.log = open(self.directory / "haproxy.log", "ab")
        self.process = subprocess.Popen(["haproxy", "-f", str(self.directory / "haproxy.cfg"), "-db"],
                                        stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.02)
        else:
            raise RuntimeError("haproxy did not start")
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.log.close()
