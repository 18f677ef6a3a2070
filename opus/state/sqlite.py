"""``sqlite:///path``: the default durable backend, one SQLite file in WAL mode.

Durability: every :meth:`save`/:meth:`remove` is one ``BEGIN IMMEDIATE`` ... ``COMMIT``
transaction. The journal is WAL with ``synchronous=NORMAL`` by default: a commit is in the
WAL file (in the OS page cache) when ``save`` returns, so killing the process — even with
SIGKILL — loses nothing already committed; only an OS crash or power loss can lose the last
commits (never corrupt the file). ``?synchronous=full`` fsyncs the WAL on every commit for
power-loss durability at the cost of one fsync per task.

Readers in other processes work while a run writes (WAL readers never block the writer).
In this process one connection is shared by all threads behind a lock.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from ..errors import StateConfigError, StateError
from ..fsutil import create_private_file
from ..model import LockInfo
from . import _sql
from ._sql import (
    LOCK_COLUMNS,
    Cursor,
    SQLStateBackend,
    T,
    apply_migrations,
    lock_from_row,
    lock_row,
)

logger = logging.getLogger(__name__)

PREFIX = "sqlite:///"
SYNCHRONOUS = ("normal", "full", "extra")


def parse_sqlite_url(url: str) -> tuple[str, dict[str, str]]:
    """The database path (absolute, from the cwd when relative) and query options of ``url``."""
    if not url.startswith(PREFIX) or len(url) == len(PREFIX):
        raise StateConfigError(
            f"invalid SQLite state URL {url!r}: expected 'sqlite:///relative/path.db' or "
            "'sqlite:////absolute/path.db'"
        )
    path, _, query = url[len(PREFIX) :].partition("?")
    try:
        options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError as exc:
        raise StateConfigError(
            f"invalid SQLite state URL {url!r}: bad query string: {exc}"
        ) from None
    unknown = set(options) - {"synchronous", "timeout"}
    if unknown:
        raise StateConfigError(
            f"invalid SQLite state URL {url!r}: unknown option(s) {', '.join(sorted(unknown))} "
            "(known: synchronous, timeout)"
        )
    if options.get("synchronous", "normal").lower() not in SYNCHRONOUS:
        raise StateConfigError(
            f"invalid SQLite state URL {url!r}: synchronous must be one of {', '.join(SYNCHRONOUS)}"
        )
    try:
        if float(options.get("timeout", "10")) < 0:
            raise ValueError
    except ValueError:
        raise StateConfigError(
            f"invalid SQLite state URL {url!r}: timeout must be seconds >= 0"
        ) from None
    if path == ":memory:":
        return path, options
    if not path or path.endswith("/"):
        raise StateConfigError(f"invalid SQLite state URL {url!r}: it names no file")
    return os.path.abspath(path), options


class SQLiteStateBackend(SQLStateBackend):
    """Task records, history, runs and context locks in one SQLite file."""

    scheme = "sqlite"
    types = {"json": "TEXT", "float": "REAL", "seq": "INTEGER PRIMARY KEY"}

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.path, options = parse_sqlite_url(url)
        self.synchronous = options.get("synchronous", "normal").upper()
        self.timeout = float(options.get("timeout", "10"))
        self._mutex = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self.schema_version: int | None = None

    def exists(self) -> bool:
        """Whether the database file is there (an in-memory database always is)."""
        return self.path == ":memory:" or self._conn is not None or os.path.exists(self.path)

    # -- connection ------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        """The shared connection; opens (creating and migrating) the database on first use."""
        if self._conn is not None:
            return self._conn
        if self.path != ":memory:":
            try:  # state holds outputs and specs: a new file is 0600 (so are -wal and -shm)
                create_private_file(self.path)
            except OSError as exc:
                raise StateError(f"cannot create {self.path}: {exc}") from exc
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(
                self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
            )
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            mode = self._enable_wal(conn)
            if mode.lower() != "wal" and self.path != ":memory:":
                logger.warning("SQLite state %s: journal_mode is %s, not WAL", self.path, mode)
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            self.schema_version = self._read_version(conn)
            if self.schema_version != _sql.LATEST_VERSION:  # migrate (or refuse) under a lock
                conn.execute("BEGIN IMMEDIATE")
                try:
                    self.schema_version = apply_migrations(
                        conn.cursor(), self.types, self.path, self._q
                    )
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            raise StateError(f"cannot open SQLite state database {self.path}: {exc}") from exc
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        self._conn = conn
        return conn

    def _enable_wal(self, conn: sqlite3.Connection) -> str:
        """Switch to WAL, retrying while another connection holds the file.

        SQLite does not call the busy handler for this pragma when a second connection is
        creating or writing a new file, so "database is locked" is retried here until the
        timeout instead of failing at once.
        """
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)

    @staticmethod
    def _read_version(conn: sqlite3.Connection) -> int:
        """The schema version, read without a write lock (0 for a new database)."""
        table = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
        ).fetchone()
        if table is None:
            return 0
        return int(conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] or 0)

    def _execute(self, work: Callable[[Cursor], T], *, write: bool) -> T:
        with self._mutex:
            conn = self._connect()
            try:
                cur = conn.cursor()
                if not write:
                    return work(cur)
                cur.execute("BEGIN IMMEDIATE")
                try:
                    result = work(cur)
                    cur.execute("COMMIT")
                    return result
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise StateError(f"SQLite state database {self.path}: {exc}") from exc

    def close(self) -> None:
        with self._mutex:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- locks: a row per context, taken in an IMMEDIATE transaction --------------------------
    def try_lock(self, info: LockInfo) -> LockInfo | None:
        def work(cur: Cursor) -> LockInfo | None:
            cur.execute(f"SELECT {LOCK_COLUMNS} FROM locks WHERE context = ?", (info.context,))
            row = cur.fetchone()
            if row is not None and row[1] != info.run_id:
                return lock_from_row(row)
            cur.execute(
                f"INSERT OR REPLACE INTO locks ({LOCK_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                lock_row(info),
            )
            return None

        return self._execute(work, write=True)

    def unlock(self, context: str, run_id: str | None = None) -> bool:
        sql, params = "DELETE FROM locks WHERE context = ?", [context]
        if run_id is not None:
            sql, params = sql + " AND run_id = ?", [context, run_id]
        return self._execute(lambda cur: bool(cur.execute(sql, params).rowcount > 0), write=True)

    def get_lock(self, context: str) -> LockInfo | None:
        rows: list[Any] = self._fetch(
            f"SELECT {LOCK_COLUMNS} FROM locks WHERE context = ?", (context,)
        )
        return lock_from_row(rows[0]) if rows else None
