"""A real PostgreSQL server for tests: a fresh cluster in a temporary directory, on a free loopback port.

initdb and the server refuse to run as root, so when the tests run as root both run as the `postgres` user (made by
Debian's postgresql package) in a directory that user owns. One server serves a whole test session; each test gets
a database of its own (database()).
"""
import glob
import os
import pathlib
import shutil
import socket
import subprocess
import tempfile
import time
import uuid


def _bin_dir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return pathlib.Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return pathlib.Path(initdb).parent
    raise RuntimeError("PostgreSQL's initdb is not installed (Debian: apt-get install postgresql)")


def _environment():
    """The tests' environment without what the sanitized runs preload: PostgreSQL's programs are not built for it
    (initdb hangs with the ASan runtime preloaded)."""
    return {name: value for name, value in os.environ.items()
            if name not in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS")}


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Postgres:
    """PostgreSQL 15 on 127.0.0.1:<port>, trusting local connections as user `postgres`."""

    def __init__(self, settings=()):
        self.bin = _bin_dir()
        self.directory = pathlib.Path(tempfile.mkdtemp(prefix="faas-pg-"))
        self.data = self.directory / "data"
        self.port = _free_port()
        self.settings = list(settings)  # extra "-c name=value" options
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.directory, "postgres", "postgres")
        os.chmod(self.directory, 0o700)
        self._run("initdb", "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale", "C.UTF-8", "-D", str(self.data))

    def _command(self, program, *args):
        command = [str(self.bin / program), *args]
        return ["runuser", "-u", "postgres", "--", *command] if self.as_postgres else command

    def _run(self, program, *args, check=True):
        return subprocess.run(self._command(program, *args), check=check, capture_output=True, text=True,
                              cwd=self.directory, timeout=120, env=_environment())

    def start(self):
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
        for setting in self.settings:
            options += f" -c {setting}"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.directory / "server.log"), "-w",
                  "start")
        return self

    def stop(self, mode="fast"):
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def kill(self):
        """Stops the server at once (as a crash would): the postmaster gets SIGKILL."""
        pid_file = self.data / "postmaster.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().split()[0])
            os.kill(pid, 9)

    def remove(self):
        self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)

    def psql(self, sql, database="postgres"):
        """Runs SQL through psql and returns its unaligned output."""
        result = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-h", "127.0.0.1", "-p", str(self.port), "-U",
                                 "postgres", "-d", database, "-v", "ON_ERROR_STOP=1", "-c", sql],
                                check=True, capture_output=True, text=True, timeout=60, env=_environment())
        return result.stdout.strip()

    def uri(self, database="postgres"):
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def database(self):
        """A new empty database; returns its URI."""
        name = "t_" + uuid.uuid4().hex[:12]
        self.psql(f"CREATE DATABASE {name}")
        return self.uri(name)

    def log(self):
        path = self.directory / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""
