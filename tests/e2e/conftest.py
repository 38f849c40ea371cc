"""Fixtures for the end-to-end tests: the real servers, started from the build tree on free ports."""
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import pytest
import requests

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("FAAS_BUILD_DIR", REPO / "build"))
sys.path.insert(0, str(REPO / "tests" / "helpers"))


class HttpServer:
    """A faas-http process on 127.0.0.1 and a free port, with its data dir and credentials."""

    def __init__(self, data_dir, *args, env=None, password="test-password"):
        self.data_dir = pathlib.Path(data_dir)
        self.args = list(args)
        self.env = dict(os.environ)
        self.env.pop("FAAS_HTTP_PASSWORD", None)
        if password is not None:
            self.env["FAAS_HTTP_PASSWORD"] = password
        self.env.update(env or {})
        self.password = password
        self.process = None
        self.log_path = None

    def start(self, timeout=20):
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-faas-http.log"
        log = open(self.log_path, "ab")
        command = [str(BUILD / "frontends" / "http" / "faas-http"), "--host", "127.0.0.1", "--port", "0",
                   "--data-dir", str(self.data_dir), *self.args]
        offset = self.log_path.stat().st_size
        self.process = subprocess.Popen(command, stdout=log, stderr=log, env=self.env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_bytes()[offset:].decode(errors="replace")
            found = re.search(r"listening on ([\d.]+):(\d+)", text)
            if found:
                self.port = int(found.group(2))
                self.url = f"http://127.0.0.1:{self.port}"
                if self.password is None:
                    self.password = (self.data_dir / "http-password").read_text().strip()
                return self
            if self.process.poll() is not None:
                raise RuntimeError(f"faas-http exited with {self.process.returncode}:\n{text}")
            time.sleep(0.02)
        raise RuntimeError("faas-http did not announce readiness:\n" + self.log())

    @property
    def auth(self):
        return ("admin", self.password)

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path else ""

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

    def upload(self, name, code, requirements=None):
        files = {"code": ("func.py", code)}
        if requirements is not None:
            files["requirements"] = ("requirements.txt", requirements)
        response = self.post("/admin/upload", files=files, data={"name": name})
        assert response.status_code == 200, response.text
        return response.json()

    def invoke(self, name, *args, **kwargs):
        return self.post(f"/function/{name}", json={"args": list(args)}, **kwargs)

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


@pytest.fixture
def start_http(tmp_path):
    """Starts faas-http servers for one test and stops them after it: start_http(*args, data_dir=?, env=?)."""
    servers = []

    def start(*args, data_dir=None, env=None, password="test-password"):
        server = HttpServer(data_dir or tmp_path / "data", *args, env=env, password=password)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def http_server(tmp_path_factory):
    """One faas-http shared by a module's tests, with a 2 s read timeout for the slow-client test."""
    server = HttpServer(tmp_path_factory.mktemp("http") / "data", "--read-timeout", "2", "--timeout", "5").start()
    yield server
    assert server.stop() == 0, server.log()
