"""Type stubs of the compiled core, libfaas._core."""
from typing import Any, Iterator, Optional, Sequence, Mapping, Union

Record = dict[str, Any]
Info = dict[str, Any]

class Error(Exception):
    """A libfaas engine error (base class of the others)."""

class FunctionNotFound(Error, LookupError):
    """No function of that name."""

class InvalidName(Error, ValueError):
    """A function name outside ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$."""

class InvalidInput(Error, ValueError):
    """Malformed arguments, code or options."""

class BuildError(Error):
    """The code does not import, has no callable main, or pip failed."""

class Overloaded(Error):
    """The invocation queue is full; retry later."""

class ShuttingDown(Error):
    """The engine is closed or closing."""

class StoreUnavailable(Error, OSError):
    """The data dir takes no writes (disk full, I/O error, read-only); nothing was recorded. Retry later."""

def set_log_level(level: str) -> None:
    """Sets what the engine logs to stderr: trace, debug, info, warn (the default), error, critical or off."""

class Chunks(Iterator[Any]):
    """Engine.stream(): each next() waits for the next chunk; .record is the record once exhausted."""
    record: Optional[Record]
    def __iter__(self) -> Chunks: ...
    def __next__(self) -> Any: ...

class Follower(Iterator[Record]):
    """Engine.follow(): each next() waits for the next record committed; close() stops it."""
    def __iter__(self) -> Follower: ...
    def __next__(self) -> Record: ...
    def stats(self) -> dict[str, Any]:
        """Calls, errors and duration percentiles per function and minute of the last hour (the /admin/stats shape)."""
    def close(self) -> None: ...

class Engine:
    """A libfaas engine on one data directory."""

    def __init__(
        self,
        data_dir: str = "faas-data",
        isolation: str = "inprocess",
        timeout: float = 30.0,
        python: str = "/usr/bin/python3",
        *,
        max_concurrency: int = 8,
        max_queue: int = 4096,
        log_retention: int = 10000,
        sandbox: bool = True,
        store: str = "sqlite",
        node_id: str = "",
    ) -> None: ...
    def nodes(self) -> list[dict[str, Any]]:
        """The servers sharing the store, as their last heartbeats left them (the /admin/nodes shape)."""
    def run_schedules(self, when: float) -> list[str]:
        """Fires the schedules due in the minute holding `when` (epoch seconds); returns invocation ids."""
    def versions(self, name: str) -> list[dict[str, Any]]:
        """The kept versions of a function's code, newest first."""
    def rollback(self, name: str, version: int) -> Info:
        """Makes a kept version the current one again."""
    def settings(self, name: str, **changes: Any) -> dict[str, Any]:
        """A function's settings; keyword arguments change them first (a merge patch; is_public for public)."""
    def upload(
        self,
        name: str,
        code: Union[str, bytes],
        requirements: Optional[str] = None,
        settings: Optional[Mapping[str, Any]] = None,
    ) -> Info:
        """Creates or atomically replaces a function; raises BuildError and keeps the old one on failure."""
    def invoke(
        self,
        name: str,
        args: Optional[Sequence[Any]] = None,
        kwargs: Optional[Mapping[str, Any]] = None,
        request_id: Optional[str] = None,
        version: Optional[int] = None,
    ) -> Record:
        """Runs main(*args, **kwargs) (of a kept version when given) and returns its record."""
    def stream(
        self,
        name: str,
        args: Optional[Sequence[Any]] = None,
        kwargs: Optional[Mapping[str, Any]] = None,
        request_id: Optional[str] = None,
        version: Optional[int] = None,
    ) -> Chunks:
        """Runs main(...) and iterates over what a generator main yields, as it yields; then .record."""
    def remove(self, name: str) -> None:
        """Deletes a function, its files and its records."""
    def delete(self, name: str) -> None:
        """Same as remove()."""
    def list(self) -> list[Info]:
        """The functions, sorted by name."""
    def info(self, name: str) -> Info:
        """One function's info."""
    def logs(self, name: str, limit: int = 1000) -> list[Record]:
        """The newest `limit` records (0: all), oldest first."""
    def follow(self, name: Optional[str] = None, after: Optional[str] = None) -> Follower:
        """Records as this engine commits them (of one function, or all); with after=ID, first those since."""
    def import_records(self, name: str, records: list[Any]) -> int: ...
    def record(self, invocation_id: str) -> Optional[Record]:
        """One record by its id, or None."""
    def status(self) -> dict[str, Any]:
        """Uptime, CPU and memory use, loaded functions, invocation counts."""
    def close(self) -> None:
        """Stops taking invocations, lets running ones finish, commits every record. Idempotent."""
    @property
    def closed(self) -> bool: ...
    @property
    def data_dir(self) -> str: ...
    @property
    def isolation(self) -> str: ...
    def __enter__(self) -> "Engine": ...
    def __exit__(self, *exc_info: object) -> None: ...
