"""What the SQL backends share: schema migrations, row mapping and the record queries.

:class:`SQLStateBackend` implements every record, history and run method of
:class:`~opus.state.base.StateBackend` once, in SQL that SQLite and PostgreSQL both accept
(``?`` placeholders are rewritten for drivers that want ``%s``). A concrete backend supplies
connections, transactions and error translation through :meth:`SQLStateBackend._execute`,
plus its own context locks.
"""

from __future__ import annotations

import json
import logging
import time
from abc import abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, NamedTuple, TypeVar

from ..errors import StateError
from ..model import HistoryEntry, LockInfo, RunRecord, TaskState
from .base import StateBackend, StateChange
from .jsontext import dump_json, dump_large_json, dump_names

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: A DB-API cursor, whichever driver made it.
Cursor = Any


class Migration(NamedTuple):
    """One append-only schema step; ``{json}``, ``{float}`` and ``{seq}`` name dialect types.

    (A named tuple: made at every start, it costs a third of a frozen dataclass.)"""

    version: int
    name: str
    statements: tuple[str, ...]


#: Never edit an applied migration: append a new one with the next number.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "task records, history, runs and locks",
        (
            """CREATE TABLE tasks (
                context TEXT NOT NULL,
                name TEXT NOT NULL,
                api_version TEXT NOT NULL DEFAULT '',
                kind TEXT NOT NULL DEFAULT '',
                applied_spec {json},
                spec_checksum TEXT,
                outputs {json} NOT NULL,
                resource_checksum TEXT,
                status TEXT NOT NULL,
                created_at {float},
                updated_at {float},
                run_id TEXT,
                error TEXT,
                PRIMARY KEY (context, name))""",
            """CREATE TABLE history (
                seq {seq},
                run_id TEXT NOT NULL,
                context TEXT NOT NULL,
                name TEXT NOT NULL,
                action TEXT NOT NULL,
                status TEXT NOT NULL,
                at {float} NOT NULL,
                duration_s {float},
                spec_checksum TEXT,
                error TEXT)""",
            "CREATE INDEX history_by_task ON history (context, name, seq)",
            "CREATE INDEX history_by_run ON history (run_id, seq)",
            """CREATE TABLE runs (
                seq {seq},
                run_id TEXT NOT NULL UNIQUE,
                context TEXT NOT NULL,
                command TEXT NOT NULL,
                action TEXT NOT NULL,
                started_at {float} NOT NULL,
                status TEXT NOT NULL,
                finished_at {float},
                pid INTEGER,
                host TEXT,
                user_name TEXT,
                summary {json} NOT NULL)""",
            "CREATE INDEX runs_by_context ON runs (context, started_at)",
            """CREATE TABLE locks (
                context TEXT PRIMARY KEY,
                run_id TEXT NOT NULL,
                pid INTEGER NOT NULL,
                host TEXT NOT NULL,
                since {float} NOT NULL,
                -- PostgreSQL only: the server session holding the advisory lock
                backend_pid INTEGER)""",
        ),
    ),
    Migration(
        2,
        "task records keep their dependencies (orders the pruning of orphans)",
        ("ALTER TABLE tasks ADD COLUMN dependencies {json}",),
    ),
    Migration(
        3,
        "run reports (what the HTML report of a run draws)",
        (
            """CREATE TABLE run_reports (
                run_id TEXT PRIMARY KEY,
                report {json} NOT NULL)""",
        ),
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version

MIGRATIONS_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at {float} NOT NULL)"""


def apply_migrations(
    cur: Cursor, types: Mapping[str, str], where: str, q: Callable[[str], str]
) -> int:
    """Apply pending migrations with ``cur`` (inside the caller's transaction).

    Returns the schema version afterwards. A database written by a newer opus is refused.
    """
    cur.execute(MIGRATIONS_TABLE.format(**types))
    cur.execute("SELECT MAX(version) FROM schema_migrations")
    current = cur.fetchone()[0] or 0
    if current > LATEST_VERSION:
        raise StateError(
            f"state database {where} has schema version {current}, but this opus only knows "
            f"versions up to {LATEST_VERSION}: upgrade opus to use it"
        )
    for migration in MIGRATIONS:
        if migration.version <= current:
            continue
        logger.info(
            "migrating %s to schema version %d: %s", where, migration.version, migration.name
        )
        for statement in migration.statements:
            cur.execute(statement.format(**types))
        cur.execute(
            q("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"),
            (migration.version, migration.name, time.time()),
        )
        current = migration.version
    return current


# -- rows <-> dataclasses ---------------------------------------------------------------------

TASK_COLUMNS = (
    "context, name, api_version, kind, applied_spec, spec_checksum, outputs, "
    "resource_checksum, status, created_at, updated_at, run_id, error, dependencies"
)
HISTORY_COLUMNS = "run_id, context, name, action, status, at, duration_s, spec_checksum, error"
RUN_COLUMNS = (
    "run_id, context, command, action, started_at, status, finished_at, pid, host, "
    "user_name, summary"
)
LOCK_COLUMNS = "context, run_id, pid, host, since"


def task_row(s: TaskState) -> tuple[Any, ...]:
    return (
        s.context, s.name, s.api_version, s.kind, dump_json(s.applied_spec), s.spec_checksum,
        dump_json(dict(s.outputs)), s.resource_checksum, s.status, s.created_at, s.updated_at,
        s.run_id, s.error, dump_names(s.dependencies),
    )  # fmt: skip


def history_row(h: HistoryEntry) -> tuple[Any, ...]:
    return (
        h.run_id, h.context, h.name, h.action, h.status, h.at, h.duration_s, h.spec_checksum,
        h.error,
    )  # fmt: skip


def run_row(r: RunRecord) -> tuple[Any, ...]:
    return (
        r.run_id, r.context, r.command, r.action, r.started_at, r.status, r.finished_at, r.pid,
        r.host, r.user, dump_json(dict(r.summary)),
    )  # fmt: skip


def lock_row(info: LockInfo) -> tuple[Any, ...]:
    return (info.context, info.run_id, info.pid, info.host, info.since)


def lock_from_row(row: Sequence[Any]) -> LockInfo:
    return LockInfo(context=row[0], run_id=row[1], pid=row[2], host=row[3], since=row[4])


def history_from_row(row: Sequence[Any]) -> HistoryEntry:
    return HistoryEntry(*row)


def placeholders(columns: str) -> str:
    return ", ".join("?" for _ in columns.split(","))


UPSERT_TASK = (
    f"INSERT INTO tasks ({TASK_COLUMNS}) VALUES ({placeholders(TASK_COLUMNS)}) "
    "ON CONFLICT (context, name) DO UPDATE SET "
    + ", ".join(f"{c.strip()} = excluded.{c.strip()}" for c in TASK_COLUMNS.split(",")[2:])
)
DELETE_TASK = "DELETE FROM tasks WHERE context = ? AND name = ?"
INSERT_HISTORY = f"INSERT INTO history ({HISTORY_COLUMNS}) VALUES ({placeholders(HISTORY_COLUMNS)})"


class SQLStateBackend(StateBackend):
    """Records, history and runs in SQL; subclasses bring connections and locks."""

    #: Dialect types substituted into :data:`MIGRATIONS`.
    types: ClassVar[Mapping[str, str]] = {}
    #: The driver's placeholder (``?`` for sqlite3, ``%s`` for psycopg).
    paramstyle: ClassVar[str] = "?"

    def _q(self, sql: str) -> str:
        """``sql`` with this driver's placeholders."""
        return sql if self.paramstyle == "?" else sql.replace("?", self.paramstyle)

    def _load_json(self, value: Any) -> Any:
        """A JSON column's value as Python data (drivers that parse JSON override this)."""
        if value is None:
            return None
        if value == "{}" or value == "[]":  # most outputs and dependencies: no parser
            return {} if value == "{}" else []
        return json.loads(value)

    @abstractmethod
    def _execute(self, work: Callable[[Cursor], T], *, write: bool) -> T:
        """Run ``work(cursor)`` in one transaction and return its result.

        Translates driver errors into :class:`StateError`; ``write`` says whether the work
        changes data (write transactions may take stronger locks; reads may be retried).
        """

    def _before_write(self, context: str) -> None:
        """Hook called before a record of ``context`` changes (e.g. to check a lock)."""

    # -- mapping that needs the dialect ---------------------------------------------------
    def _task(self, row: Sequence[Any]) -> TaskState:
        return TaskState(
            context=row[0], name=row[1], api_version=row[2], kind=row[3],
            applied_spec=self._load_json(row[4]), spec_checksum=row[5],
            outputs=self._load_json(row[6]) or {}, resource_checksum=row[7], status=row[8],
            created_at=row[9], updated_at=row[10], run_id=row[11], error=row[12],
            dependencies=tuple(self._load_json(row[13]) or ()),
        )  # fmt: skip

    def _run(self, row: Sequence[Any]) -> RunRecord:
        return RunRecord(
            run_id=row[0], context=row[1], command=row[2], action=row[3], started_at=row[4],
            status=row[5], finished_at=row[6], pid=row[7], host=row[8], user=row[9],
            summary=self._load_json(row[10]) or {},
        )  # fmt: skip

    def _fetch(self, sql: str, params: Iterable[Any] = ()) -> list[Sequence[Any]]:
        def work(cur: Cursor) -> list[Sequence[Any]]:
            cur.execute(self._q(sql), tuple(params))
            return list(cur.fetchall())

        return self._execute(work, write=False)

    # -- task records ----------------------------------------------------------------------
    def get(self, context: str, name: str) -> TaskState | None:
        rows = self._fetch(
            f"SELECT {TASK_COLUMNS} FROM tasks WHERE context = ? AND name = ?", (context, name)
        )
        return self._task(rows[0]) if rows else None

    def list_records(self, context: str) -> list[TaskState]:
        rows = self._fetch(
            f"SELECT {TASK_COLUMNS} FROM tasks WHERE context = ? ORDER BY name", (context,)
        )
        return [self._task(r) for r in rows]

    def contexts(self) -> list[str]:
        return [r[0] for r in self._fetch("SELECT DISTINCT context FROM tasks ORDER BY context")]

    def _insert_history(self, cur: Cursor, entry: HistoryEntry | None) -> None:
        if entry is not None:
            cur.execute(self._q(INSERT_HISTORY), history_row(entry))

    def save(self, state: TaskState, entry: HistoryEntry | None = None) -> None:
        self._before_write(state.context)
        sql = self._q(UPSERT_TASK)
        row = task_row(state)

        def work(cur: Cursor) -> None:
            cur.execute(sql, row)
            self._insert_history(cur, entry)

        self._execute(work, write=True)

    def save_many(self, changes: Sequence[StateChange]) -> None:
        """Every change in one transaction (``executemany`` per kind of statement)."""
        changes = list(changes)
        if not changes:
            return
        for context in sorted({c.context for c in changes}):
            self._before_write(context)
        upsert, delete = self._q(UPSERT_TASK), self._q(DELETE_TASK)
        history = self._q(INSERT_HISTORY)
        if len({(c.context, c.name) for c in changes}) < len(changes):
            # One task changed twice: keep the order, statement by statement.
            def work(cur: Cursor) -> None:
                for c in changes:
                    if c.record is not None:
                        cur.execute(upsert, task_row(c.record))
                    else:
                        cur.execute(delete, (c.context, c.name))
                    if c.entry is not None:
                        cur.execute(history, history_row(c.entry))

        else:
            saves = [task_row(c.record) for c in changes if c.record is not None]
            removes = [(c.context, c.name) for c in changes if c.record is None]
            entries = [history_row(c.entry) for c in changes if c.entry is not None]

            def work(cur: Cursor) -> None:
                if saves:
                    cur.executemany(upsert, saves)
                if removes:
                    cur.executemany(delete, removes)
                if entries:
                    cur.executemany(history, entries)

        self._execute(work, write=True)

    def remove(self, context: str, name: str, entry: HistoryEntry | None = None) -> bool:
        self._before_write(context)

        def work(cur: Cursor) -> bool:
            cur.execute(self._q(DELETE_TASK), (context, name))
            existed: bool = cur.rowcount > 0
            self._insert_history(cur, entry)
            return existed

        return self._execute(work, write=True)

    def history(self, context: str, name: str, limit: int = 50) -> list[HistoryEntry]:
        rows = self._fetch(
            f"SELECT {HISTORY_COLUMNS} FROM history WHERE context = ? AND name = ? "
            "ORDER BY seq DESC LIMIT ?",
            (context, name, max(0, limit)),
        )
        return [history_from_row(r) for r in rows]

    def import_state(
        self,
        records: Iterable[TaskState],
        runs: Iterable[RunRecord],
        entries: Iterable[HistoryEntry],
    ) -> None:
        task_sql = self._q(
            f"INSERT INTO tasks ({TASK_COLUMNS}) VALUES ({placeholders(TASK_COLUMNS)})"
        )
        run_sql = self._q(f"INSERT INTO runs ({RUN_COLUMNS}) VALUES ({placeholders(RUN_COLUMNS)})")
        history_sql = self._q(
            f"INSERT INTO history ({HISTORY_COLUMNS}) VALUES ({placeholders(HISTORY_COLUMNS)})"
        )
        task_rows = [task_row(r) for r in records]
        run_rows = [run_row(r) for r in runs]
        history_rows = [history_row(e) for e in entries]

        def work(cur: Cursor) -> None:
            cur.executemany(run_sql, run_rows)
            cur.executemany(history_sql, history_rows)
            cur.executemany(task_sql, task_rows)

        self._execute(work, write=True)

    # -- runs ------------------------------------------------------------------------------
    def start_run(self, record: RunRecord) -> None:
        sql = self._q(f"INSERT INTO runs ({RUN_COLUMNS}) VALUES ({placeholders(RUN_COLUMNS)})")
        self._execute(lambda cur: cur.execute(sql, run_row(record)), write=True)

    def finish_run(
        self, run_id: str, status: str, finished_at: float, summary: dict[str, int]
    ) -> None:
        sql = self._q("UPDATE runs SET status = ?, finished_at = ?, summary = ? WHERE run_id = ?")
        params = (status, finished_at, dump_json(dict(summary)), run_id)
        self._execute(lambda cur: cur.execute(sql, params), write=True)

    def list_runs(self, context: str | None = None, limit: int = 20) -> list[RunRecord]:
        where, params = ("WHERE context = ? ", [context]) if context is not None else ("", [])
        rows = self._fetch(
            f"SELECT {RUN_COLUMNS} FROM runs {where}ORDER BY started_at DESC, seq DESC LIMIT ?",
            [*params, max(0, limit)],
        )
        return [self._run(r) for r in rows]

    def get_run(self, run_id: str) -> RunRecord | None:
        rows = self._fetch(f"SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,))
        if not rows:
            rows = self._fetch(
                f"SELECT {RUN_COLUMNS} FROM runs WHERE substr(run_id, 1, ?) = ? LIMIT 2",
                (len(run_id), run_id),
            )
        return self._run(rows[0]) if len(rows) == 1 else None

    def run_entries(self, run_id: str) -> list[HistoryEntry]:
        rows = self._fetch(
            f"SELECT {HISTORY_COLUMNS} FROM history WHERE run_id = ? ORDER BY seq", (run_id,)
        )
        return [history_from_row(r) for r in rows]

    def save_run_report(self, run_id: str, report: Mapping[str, Any]) -> None:
        self.save_run_report_text(run_id, dump_large_json(dict(report)))

    def save_run_report_text(self, run_id: str, text: str) -> None:
        sql = self._q(
            "INSERT INTO run_reports (run_id, report) VALUES (?, ?) "
            "ON CONFLICT (run_id) DO UPDATE SET report = excluded.report"
        )
        params = (run_id, text)
        self._execute(lambda cur: cur.execute(sql, params), write=True)

    def run_report(self, run_id: str) -> dict[str, Any] | None:
        rows = self._fetch("SELECT report FROM run_reports WHERE run_id = ?", (run_id,))
        return self._load_json(rows[0][0]) if rows else None

    def prune(self, keep_runs: int) -> int:
        if keep_runs < 0:
            raise ValueError("keep_runs must be >= 0")
        # a run holding its context's lock is going on (or its lock is still to be taken
        # over): it is kept, whatever its place
        doomed = (
            "SELECT run_id FROM (SELECT run_id, ROW_NUMBER() OVER "
            "(PARTITION BY context ORDER BY started_at DESC, seq DESC) AS pos FROM runs) "
            "AS ranked WHERE pos > ? AND run_id NOT IN (SELECT run_id FROM locks)"
        )

        def work(cur: Cursor) -> int:
            cur.execute(self._q(f"DELETE FROM history WHERE run_id IN ({doomed})"), (keep_runs,))
            cur.execute(
                self._q(f"DELETE FROM run_reports WHERE run_id IN ({doomed})"), (keep_runs,)
            )
            cur.execute(self._q(f"DELETE FROM runs WHERE run_id IN ({doomed})"), (keep_runs,))
            return int(cur.rowcount)

        removed = self._execute(work, write=True)
        if removed:
            logger.info("pruned %d old run(s) from %r", removed, self)
        return removed
