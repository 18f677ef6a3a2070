"""``postgresql://user:pass@host:port/db?schema=opus``: shared state for teams (psycopg 3).

Tables live in one schema (default ``opus``), created and migrated on first use under a
transaction-level advisory lock, so concurrent first users do not race.

Context locks are **session-level advisory locks** held on a dedicated connection that stays
open while the lock is held: when a client crashes, its connection dies and the server frees
the lock by itself. The ``locks`` table only describes the holder (run, pid, host, since and
the server session) for the "locked by ..." message; a row whose advisory lock is free is
stale and ignored. Forcing :meth:`unlock` of a lock held by a live session terminates that
session (``pg_terminate_backend``), located exactly through ``pg_locks``. The holder notices
before its next write (see :meth:`_before_write`) and stops with a :class:`LockError`, so two
runs never write one context at once.

A lost connection raises ``StateError("lost connection to PostgreSQL at host:port: ...")``.
Reads, and writes that failed before ``COMMIT`` was sent (nothing can have been committed),
are retried once on a new connection; a failure during ``COMMIT`` is reported as such. Every
``save``/``remove`` is one transaction, so a record is never half written.
"""

from __future__ import annotations

import hashlib
import logging
import re
import select
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import LockError, StateConfigError, StateError
from ..model import LockInfo
from ._sql import (
    LOCK_COLUMNS,
    Cursor,
    SQLStateBackend,
    T,
    apply_migrations,
    lock_from_row,
    lock_row,
)

if TYPE_CHECKING:
    import psycopg

logger = logging.getLogger(__name__)

SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
ADVISORY_HOLDER = (
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND classid::bigint = %s AND objid::bigint = %s"
)


def _driver() -> Any:
    """The ``psycopg`` module, imported on first use."""
    try:
        import psycopg
    except ImportError:
        raise StateError(
            "the PostgreSQL state backend needs psycopg 3: install opus[postgres] "
            "(pip install 'opus[postgres]')"
        ) from None
    return psycopg


def _reason(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def parse_postgres_url(url: str) -> tuple[str, str, str]:
    """``(libpq conninfo, schema, "host:port")`` of a ``postgresql://`` URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres") or not url.split(":", 1)[1].startswith("//"):
        raise StateConfigError(
            f"invalid PostgreSQL state URL {redact(url)!r}: expected "
            "'postgresql://user:password@host:port/database?schema=opus'"
        )
    try:
        query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
        port = parts.port
    except ValueError as exc:
        raise StateConfigError(f"invalid PostgreSQL state URL {redact(url)!r}: {exc}") from None
    options = dict(query)
    schema = options.pop("schema", "opus")
    if not SCHEMA_RE.match(schema):
        raise StateConfigError(
            f"invalid PostgreSQL state URL {redact(url)!r}: schema {schema!r} must be a "
            "lower-case SQL identifier (letters, digits, underscores)"
        )
    host = parts.hostname or options.get("host") or "localhost"
    where = f"{host}:{port or options.get('port') or 5432}"
    conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(options), ""))
    return conninfo, schema, where


def redact(url: str) -> str:
    """``url`` without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def advisory_key(schema: str, context: str) -> int:
    """A stable signed 64-bit advisory lock key for ``context`` in ``schema``."""
    digest = hashlib.sha256(f"opus:{schema}:{context}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _split_key(key: int) -> tuple[int, int]:
    """How ``pg_locks`` shows a bigint advisory key: (classid, objid)."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    return unsigned >> 32, unsigned & 0xFFFFFFFF


class PostgresStateBackend(SQLStateBackend):
    """Task records, history and runs in PostgreSQL; context locks as advisory locks."""

    scheme = "postgresql"
    types = {
        "json": "JSONB",
        "float": "DOUBLE PRECISION",
        "seq": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    }
    paramstyle = "%s"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.conninfo, self.schema, self.where = parse_postgres_url(url)
        self._mutex = threading.RLock()
        self._conn: psycopg.Connection[Any] | None = None
        self._lock_conn: psycopg.Connection[Any] | None = None
        self._held: dict[str, LockInfo] = {}
        self._ever_connected = False
        self.schema_version: int | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {redact(self.url)}>"

    def _load_json(self, value: Any) -> Any:
        return value  # psycopg already parses JSONB

    # -- connections -----------------------------------------------------------------------
    def _open(self) -> psycopg.Connection[Any]:
        pg = _driver()
        try:
            conn: psycopg.Connection[Any] = pg.connect(
                self.conninfo,
                autocommit=True,
                connect_timeout=10,
                application_name="opus",
                options=f"-c search_path={self.schema}",
            )
        except pg.Error as exc:
            verb = "lost connection to" if self._ever_connected else "cannot connect to"
            raise StateError(f"{verb} PostgreSQL at {self.where}: {_reason(exc)}") from exc
        self._ever_connected = True
        return conn

    def _data(self) -> psycopg.Connection[Any]:
        """The connection for records; creates and migrates the schema on first use."""
        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return self._conn
        conn = self._open()
        if self.schema_version is None:
            try:
                with conn.transaction(), conn.cursor() as cur:
                    cur.execute(
                        "SELECT pg_advisory_xact_lock(%s)", (advisory_key(self.schema, ""),)
                    )
                    cur.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
                    where = f"at {self.where} (schema {self.schema})"
                    self.schema_version = apply_migrations(cur, self.types, where, self._q)
            except BaseException as exc:
                conn.close()
                if isinstance(exc, _driver().Error):
                    raise StateError(
                        f"cannot prepare the opus schema at {self.where}: {_reason(exc)}"
                    ) from exc
                raise
        self._conn = conn
        return conn

    def _locker(self) -> psycopg.Connection[Any]:
        """The connection that holds this backend's advisory locks."""
        if self._lock_conn is None or self._lock_conn.closed or self._lock_conn.broken:
            self._data()  # the schema must exist
            self._held.clear()  # a dead session held nothing any more
            self._lock_conn = self._open()
        return self._lock_conn

    def _lock_alive(self) -> bool:
        """Whether the session holding our advisory locks still exists (no round trip)."""
        conn = self._lock_conn
        if conn is None or conn.closed or conn.broken:
            return False
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
        if not readable:  # an idle session hears nothing unless the server is closing it
            return True
        try:
            conn.execute("SELECT 1")
        except _driver().Error:
            return False
        return True

    def _execute(self, work: Callable[[Cursor], T], *, write: bool) -> T:
        pg = _driver()
        with self._mutex:
            for attempt in (1, 2):
                conn = self._data()
                committing = False
                try:
                    with conn.cursor() as cur:
                        if write:
                            cur.execute("BEGIN")
                        result = work(cur)
                        if write:
                            committing = True
                            cur.execute("COMMIT")
                    return result
                except BaseException as exc:
                    lost = conn.closed or conn.broken
                    if not lost and conn.info.transaction_status.name != "IDLE":
                        try:
                            conn.execute("ROLLBACK")
                        except pg.Error:
                            lost = conn.closed or conn.broken
                    if not isinstance(exc, pg.Error):
                        raise
                    if not lost:
                        raise StateError(f"PostgreSQL at {self.where}: {_reason(exc)}") from exc
                    self._conn = None
                    conn.close()
                    if attempt == 1 and not committing:
                        logger.warning(
                            "lost connection to PostgreSQL at %s (%s); reconnecting",
                            self.where,
                            _reason(exc),
                        )
                        continue
                    doubt = " (the last change may or may not be committed)" if committing else ""
                    raise StateError(
                        f"lost connection to PostgreSQL at {self.where}: {_reason(exc)}{doubt}"
                    ) from exc
        raise AssertionError("unreachable")

    def _before_write(self, context: str) -> None:
        """Refuse to write a context whose lock this backend held but lost."""
        with self._mutex:
            held = self._held.get(context)
            if held is None or self._lock_alive():
                return
            self._held.clear()
        raise LockError(
            f"lost the lock of context {context!r} held by run {held.run_id}: its PostgreSQL "
            f"session at {self.where} ended (server restart, lost connection or a forced "
            "unlock); stopping so that two runs never write the same context"
        )

    def _lock_call(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        """Run ``work`` on the lock connection, translating driver errors.

        When that connection turns out dead and it held no lock, ``work`` is retried once on
        a new one (a dead session holds nothing, so nothing can be doubled).
        """
        pg = _driver()
        for attempt in (1, 2):
            held_before = bool(self._held)
            conn = self._locker()
            try:
                return work(conn)
            except pg.Error as exc:
                if not (conn.closed or conn.broken):
                    raise StateError(f"PostgreSQL at {self.where}: {_reason(exc)}") from exc
                self._held.clear()
                self._lock_conn = None
                conn.close()
                if attempt == 1 and not held_before:
                    continue
                raise StateError(
                    f"lost connection to PostgreSQL at {self.where}: {_reason(exc)}"
                ) from exc
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._mutex:
            for conn in (self._conn, self._lock_conn):
                if conn is not None:
                    conn.close()
            self._conn = self._lock_conn = None
            self._held.clear()

    # -- locks -----------------------------------------------------------------------------
    def _holder(self, conn: psycopg.Connection[Any], context: str) -> tuple[int | None, Any]:
        """(server pid holding the advisory lock of ``context`` or None, its locks row)."""
        pid_row = conn.execute(
            ADVISORY_HOLDER, _split_key(advisory_key(self.schema, context))
        ).fetchone()
        row = conn.execute(
            f"SELECT {LOCK_COLUMNS}, backend_pid FROM locks WHERE context = %s", (context,)
        ).fetchone()
        return (pid_row[0] if pid_row else None), row

    def try_lock(self, info: LockInfo) -> LockInfo | None:
        upsert = (
            f"INSERT INTO locks ({LOCK_COLUMNS}, backend_pid) "
            "VALUES (%s, %s, %s, %s, %s, pg_backend_pid()) ON CONFLICT (context) DO UPDATE SET "
            "run_id = excluded.run_id, pid = excluded.pid, host = excluded.host, "
            "since = excluded.since, backend_pid = excluded.backend_pid"
        )

        def work(conn: psycopg.Connection[Any]) -> LockInfo | None:
            for _ in range(5):
                key = advisory_key(self.schema, info.context)
                got = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
                if got is not None and got[0]:
                    try:
                        conn.execute(upsert, lock_row(info))
                    except BaseException:
                        conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
                        raise
                    self._held[info.context] = info
                    return None
                pid, row = self._holder(conn, info.context)
                if pid is not None and row is not None and row[5] == pid:
                    return lock_from_row(row)
                time.sleep(0.02)  # taken or freed a moment ago: look again
            return LockInfo(info.context, "(unknown)", 0, "(unknown)", time.time())

        with self._mutex:
            held = self._held.get(info.context)
            if held is not None and not self._lock_alive():
                self._held.clear()
                held = None
            if held is None:
                return self._lock_call(work)
            if held.run_id != info.run_id:
                return held
            self._lock_call(lambda conn: conn.execute(upsert, lock_row(info)))
            self._held[info.context] = info
            return None

    def get_lock(self, context: str) -> LockInfo | None:
        with self._mutex:
            if context in self._held and self._lock_alive():
                return self._held[context]
            pid, row = self._lock_call(lambda conn: self._holder(conn, context))
        if pid is None:
            return None
        if row is None or row[5] != pid:
            return LockInfo(context, "(unknown)", 0, "(unknown)", time.time())
        return lock_from_row(row)

    def unlock(self, context: str, run_id: str | None = None) -> bool:
        with self._mutex:
            held = self._held.get(context)
            if held is not None and self._lock_alive():
                if run_id is not None and held.run_id != run_id:
                    return False
                key = advisory_key(self.schema, context)

                def release(conn: psycopg.Connection[Any]) -> bool:
                    conn.execute("DELETE FROM locks WHERE context = %s", (context,))
                    conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
                    return True

                del self._held[context]
                return self._lock_call(release)
            return self._lock_call(lambda conn: self._force_unlock(conn, context, run_id))

    def _force_unlock(
        self, conn: psycopg.Connection[Any], context: str, run_id: str | None
    ) -> bool:
        """Free a lock held by another session: terminate it, or clear a stale record."""
        pid, row = self._holder(conn, context)
        if run_id is not None and (row is None or row[1] != run_id):
            return False
        if pid is not None and run_id is not None and row[5] != pid:
            return False  # the record is stale; someone else holds the lock now
        if pid is not None:
            holder = lock_from_row(row).describe() if row is not None else "an unknown run"
            logger.warning(
                "force-unlocking context %r: terminating the PostgreSQL session (server pid %d) "
                "of %s",
                context,
                pid,
                holder,
            )
            try:
                conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
            except _driver().Error as exc:
                raise StateError(
                    f"cannot force-unlock context {context!r}: {holder} holds it and terminating "
                    f"its PostgreSQL session (server pid {pid}) failed: {_reason(exc)}; stop that "
                    "run or ask a database administrator"
                ) from exc
            deadline = time.monotonic() + 5
            while self._holder(conn, context)[0] == pid and time.monotonic() < deadline:
                time.sleep(0.02)
        sql, params = "DELETE FROM locks WHERE context = %s", [context]
        if row is not None:
            sql, params = sql + " AND run_id = %s", [context, row[1]]
        deleted = conn.execute(sql, params).rowcount > 0
        return deleted or pid is not None
