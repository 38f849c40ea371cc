"""libfaas: a Functions-as-a-Service engine embedding CPython, driven from Python.

    import libfaas
    with libfaas.Engine(data_dir="faas-data") as engine:
        engine.upload("calc", code="def main(a, b):\n    return a + b\n")
        record = engine.invoke("calc", [10, 20])     # the invocation record, a dict
        record["result"]                             # 30

The engine runs functions in this interpreter, on its own threads, and releases the GIL while it waits.
Command line: ``python3 -m libfaas --help``.
"""
from ._core import (
    BuildError,
    Engine,
    Error,
    FunctionNotFound,
    InvalidInput,
    InvalidName,
    Overloaded,
    ShuttingDown,
    StoreUnavailable,
    set_log_level,
)

__all__ = [
    "Engine",
    "Error",
    "FunctionNotFound",
    "InvalidName",
    "InvalidInput",
    "BuildError",
    "Overloaded",
    "ShuttingDown",
    "StoreUnavailable",
    "set_log_level",
]
__version__ = "0.1.0"
