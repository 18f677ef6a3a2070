"""What only the SQLite backend does: URLs, files, pragmas, migrations, cross-process WAL."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from opus.errors import StateError
from opus.model import TaskState
from opus.state import _sql
from opus.state.sqlite import SQLiteStateBackend

READER = """
    import sys, time
    from opus.state.sqlite import SQLiteStateBackend
    backend = SQLiteStateBackend(sys.argv[1])
    started = time.monotonic()
    names = [s.name for s in backend.list_records("dev")]
    print(names, round(time.monotonic() - started, 3), flush=True)
"""


def test_relative_url_is_relative_to_the_cwd_and_created_on_first_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    backend = SQLiteStateBackend("sqlite:///.opus/sub/state.db")
    assert backend.path == str(tmp_path / ".opus/sub/state.db")
    assert not (tmp_path / ".opus").exists()  # nothing happens before first use
    monkeypatch.chdir("/")
    backend.save(TaskState("dev", "web"))
    assert (tmp_path / ".opus/sub/state.db").is_file()
    backend.close()


def test_absolute_url(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "state.db"
    with SQLiteStateBackend(f"sqlite:///{path}") as backend:  # four slashes in all
        backend.save(TaskState("dev", "web"))
        assert backend.path == str(path)
    with SQLiteStateBackend(f"sqlite:///{path}") as again:
        assert again.get("dev", "web") == TaskState("dev", "web")


@pytest.mark.parametrize(
    "url, message",
    [
        ("sqlite://state.db", "expected 'sqlite:///relative/path.db'"),
        ("sqlite:///", "expected 'sqlite:///relative/path.db'"),
        ("sqlite:///some/dir/", "names no file"),
        ("postgresql:///x.db", "expected 'sqlite:///relative/path.db'"),
        ("sqlite:///x.db?journal=off", "unknown option(s) journal"),
        ("sqlite:///x.db?synchronous=sometimes", "synchronous must be one of"),
        ("sqlite:///x.db?timeout=soon", "timeout must be seconds"),
    ],
)
def test_bad_url_is_a_clear_state_error(url: str, message: str) -> None:
    with pytest.raises(StateError, match="invalid SQLite state URL") as info:
        SQLiteStateBackend(url)
    assert message in str(info.value)


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    (tmp_path / "junk.db").write_bytes(b"this is not a database, just text\n" * 100)
    backend = SQLiteStateBackend(f"sqlite:///{tmp_path}/junk.db")
    with pytest.raises(StateError, match=r"cannot open SQLite state database .*junk\.db"):
        backend.get("dev", "web")


def test_a_parent_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    backend = SQLiteStateBackend(f"sqlite:///{tmp_path}/file/state.db")
    with pytest.raises(StateError, match="cannot create"):
        backend.save(TaskState("dev", "web"))


def test_wal_and_synchronous(tmp_path: Path) -> None:
    with SQLiteStateBackend(f"sqlite:///{tmp_path}/s.db") as normal:
        normal.contexts()
        assert normal._conn is not None
        assert normal._conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert normal._conn.execute("PRAGMA busy_timeout").fetchone()[0] == 10_000
    raw = sqlite3.connect(tmp_path / "s.db")
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # kept in the file
    raw.close()
    with SQLiteStateBackend(f"sqlite:///{tmp_path}/s.db?synchronous=full&timeout=2") as full:
        full.contexts()
        assert full._conn is not None
        assert full._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert full._conn.execute("PRAGMA busy_timeout").fetchone()[0] == 2000


def _versions(path: Path) -> list[tuple[int, str]]:
    raw = sqlite3.connect(path)
    try:
        return raw.execute(
            "SELECT version, name FROM schema_migrations ORDER BY version"
        ).fetchall()
    finally:
        raw.close()


def test_schema_version_is_recorded_once(tmp_path: Path) -> None:
    for _ in range(2):
        with SQLiteStateBackend(f"sqlite:///{tmp_path}/s.db") as backend:
            backend.contexts()
            assert backend.schema_version == _sql.LATEST_VERSION == len(_sql.MIGRATIONS)
    assert _versions(tmp_path / "s.db") == [(m.version, m.name) for m in _sql.MIGRATIONS]
    raw = sqlite3.connect(tmp_path / "s.db")
    indexes = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    raw.close()
    assert {"history_by_task", "history_by_run", "runs_by_context"} <= indexes


def test_a_database_from_a_newer_opus_is_refused(tmp_path: Path) -> None:
    with SQLiteStateBackend(f"sqlite:///{tmp_path}/s.db") as backend:
        backend.save(TaskState("dev", "web"))
    raw = sqlite3.connect(tmp_path / "s.db")
    raw.execute("INSERT INTO schema_migrations VALUES (99, 'from the future', 0)")
    raw.commit()
    raw.close()
    backend = SQLiteStateBackend(f"sqlite:///{tmp_path}/s.db")
    with pytest.raises(
        StateError,
        match=rf"schema version 99, but this opus only knows versions up to {_sql.LATEST_VERSION}",
    ):
        backend.get("dev", "web")


def test_a_new_migration_is_applied_atomically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SQLiteStateBackend(f"sqlite:///{tmp_path}/s.db") as backend:
        backend.save(TaskState("dev", "web"))
    known = [(m.version, m.name) for m in _sql.MIGRATIONS]
    nxt = _sql.LATEST_VERSION + 1
    broken = _sql.Migration(nxt, "broken", ("CREATE TABLE extra (x INTEGER)", "NOT SQL AT ALL"))
    shipped = _sql.MIGRATIONS
    monkeypatch.setattr(_sql, "MIGRATIONS", (*shipped, broken))
    monkeypatch.setattr(_sql, "LATEST_VERSION", nxt)
    with pytest.raises(StateError, match="cannot open SQLite state database"):
        SQLiteStateBackend(f"sqlite:///{tmp_path}/s.db").contexts()
    assert _versions(tmp_path / "s.db") == known  # rolled back, extra not created
    good = _sql.Migration(nxt, "task notes", ("ALTER TABLE tasks ADD COLUMN note TEXT",))
    monkeypatch.setattr(_sql, "MIGRATIONS", (*shipped, good))
    with SQLiteStateBackend(f"sqlite:///{tmp_path}/s.db") as backend:
        assert backend.get("dev", "web") == TaskState("dev", "web")
        assert backend.schema_version == nxt
    assert _versions(tmp_path / "s.db") == [*known, (nxt, "task notes")]


def test_readers_in_other_processes_are_not_blocked_by_a_writer(tmp_path: Path, children) -> None:
    url = f"sqlite:///{tmp_path}/s.db?timeout=1"
    with SQLiteStateBackend(url) as backend:
        backend.save(TaskState("dev", "old"))
    writer = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute(
        "INSERT INTO tasks (context, name, outputs, status) VALUES ('dev', 'new', '{}', 'done')"
    )
    try:
        names, seconds = children(READER, url).readline().rsplit(" ", 1)
        assert names == "['old']"  # the committed state, without waiting for the writer
        assert float(seconds) < 0.5
        blocked = SQLiteStateBackend(url)
        started = time.monotonic()
        with pytest.raises(StateError, match="database is locked"):
            blocked.save(TaskState("dev", "other"))  # a second writer waits busy_timeout
        assert time.monotonic() - started >= 0.9
        blocked.close()
    finally:
        writer.execute("COMMIT")
        writer.close()
    names, _ = children(READER, url).readline().rsplit(" ", 1)
    assert names == "['new', 'old']"


def test_state_file_is_usable_after_many_open_close_cycles(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    for i in range(20):
        with SQLiteStateBackend(url) as backend:
            backend.save(TaskState("dev", f"t{i}"))
    with SQLiteStateBackend(url) as backend:
        assert len(backend.list_records("dev")) == 20
    assert not os.path.exists(f"{tmp_path}/s.db-journal")
