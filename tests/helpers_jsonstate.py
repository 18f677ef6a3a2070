"""A third-party state backend as a plugin: ``jsonfile:///path/state.json``.

Load it with ``opus -p helpers_jsonstate`` (PYTHONPATH=tests). It keeps everything in one
JSON file, reloaded and rewritten (atomically, under an ``flock``) around every call, so
several processes can share it. The record logic is :class:`MemoryStateBackend`'s.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from opus import hookimpl
from opus.model import HistoryEntry, LockInfo, RunRecord, TaskState
from opus.state.base import StateBackend
from opus.state.memory import MemoryStateBackend

SCHEME = "jsonfile"
PREFIX = f"{SCHEME}://"

_READS = (
    "get",
    "list_records",
    "contexts",
    "history",
    "list_runs",
    "get_run",
    "run_entries",
    "get_lock",
)
_WRITES = (
    "save",
    "remove",
    "start_run",
    "finish_run",
    "prune",
    "try_lock",
    "unlock",
    "import_state",
)


class JsonFileStateBackend(MemoryStateBackend):
    """Memory-backend logic, persisted to one JSON file shared between processes."""

    scheme = SCHEME

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.path = Path(url[len(PREFIX) :])
        self._depth = threading.local()

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[None]:
        """Reload under an exclusive file lock; write back afterwards when ``write``."""
        if getattr(self._depth, "n", 0):  # a nested call (prune -> list_runs)
            yield
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._mutex, open(f"{self.path}.lock", "a") as guard:
            fcntl.flock(guard, fcntl.LOCK_EX)
            self._depth.n = 1
            try:
                self._load()
                yield
                if write:
                    self._dump()
            finally:
                self._depth.n = 0

    def _load(self) -> None:
        data: dict[str, Any] = json.loads(self.path.read_text()) if self.path.exists() else {}
        records = [TaskState.from_dict(r) for r in data.get("records", [])]
        self._records = {}
        for record in records:
            self._records.setdefault(record.context, {})[record.name] = record
        self._history = [HistoryEntry(**h) for h in data.get("history", [])]
        self._runs = {r["run_id"]: RunRecord(**r) for r in data.get("runs", [])}
        self._locks = {lock["context"]: LockInfo(**lock) for lock in data.get("locks", [])}

    def _dump(self) -> None:
        data = {
            "records": [r.to_dict() for c in self._records.values() for r in c.values()],
            "history": [h.to_dict() for h in self._history],
            "runs": [r.to_dict() for r in self._runs.values()],
            "locks": [asdict(lock) for lock in self._locks.values()],
        }
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=1, default=str))
        os.replace(tmp, self.path)


def _wrap(name: str, write: bool) -> Callable[..., Any]:
    inner = getattr(MemoryStateBackend, name)

    def method(self: JsonFileStateBackend, *args: Any, **kwargs: Any) -> Any:
        with self._transaction(write):
            return inner(self, *args, **kwargs)

    method.__name__ = name
    method.__doc__ = inner.__doc__
    return method


for _name in _READS:
    setattr(JsonFileStateBackend, _name, _wrap(_name, write=False))
for _name in _WRITES:
    if hasattr(MemoryStateBackend, _name):
        setattr(JsonFileStateBackend, _name, _wrap(_name, write=True))


@hookimpl
def opus_state_schemes() -> list[str]:
    return [SCHEME]


@hookimpl
def opus_state_backend(url: str) -> StateBackend | None:
    return JsonFileStateBackend(url) if url.startswith(PREFIX) else None
