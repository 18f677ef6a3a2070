"""A SQLite state backend on a disk that fills up: ``fullsqlite:///path?writes=N``
(or ``?fail=METHOD``: only that write fails).

Load it with ``opus -p helpers_fullstate`` (PYTHONPATH=tests). The first N writes (run
start, task saves, ...) succeed; every later write raises ``OSError(ENOSPC)``, as SQLite's
own writes do on a full filesystem. Reads keep working.
"""

from __future__ import annotations

import errno
import os
from typing import Any

from opus import hookimpl
from opus.state.sqlite import SQLiteStateBackend

SCHEME = "fullsqlite"
_WRITES = ("save", "save_many", "remove", "start_run", "finish_run", "unlock", "try_lock")


class FullDiskState(SQLiteStateBackend):
    """Succeeds ``writes`` times, then the disk is full."""

    scheme = SCHEME

    def __init__(self, url: str) -> None:
        path, _, query = url.removeprefix(f"{SCHEME}://").partition("?")
        super().__init__("sqlite://" + path)
        options = dict(pair.partition("=")[::2] for pair in query.split("&") if pair)
        self.left = int(options.get("writes", "0") or "0")
        #: with ``fail=METHOD``: only that write fails (always), the others always succeed
        self.only = options.get("fail")
        if self.only:
            self.left = 1 << 30

    def __getattribute__(self, name: str) -> Any:
        attr = super().__getattribute__(name)
        if name not in _WRITES:
            return attr

        def write(*args: Any, **kwargs: Any) -> Any:
            if self.left <= 0 or name == self.only:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.path)
            self.left -= 1
            return attr(*args, **kwargs)

        return write


@hookimpl
def opus_state_schemes() -> list[str]:
    return [SCHEME]


@hookimpl
def opus_state_backend(url: str) -> FullDiskState | None:
    return FullDiskState(url) if url.startswith(f"{SCHEME}://") else None
