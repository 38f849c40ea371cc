"""The bindings' tests import libfaas from the build tree (FAAS_BUILD_DIR, default build/)."""
import os
import pathlib
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("FAAS_BUILD_DIR", REPO / "build"))
PACKAGE_DIR = BUILD / "python"
sys.path.insert(0, str(PACKAGE_DIR))
sys.path.insert(0, str(REPO / "tests" / "helpers"))

import libfaas  # noqa: E402  (from the build tree, after the path is set)


@pytest.fixture
def engine(tmp_path):
    with libfaas.Engine(data_dir=str(tmp_path / "data"), timeout=5) as engine:
        yield engine


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL for the session (tests/helpers/postgres.py); tests make databases with .database()."""
    from postgres import Postgres
    server = Postgres().start()
    yield server
    server.remove()
