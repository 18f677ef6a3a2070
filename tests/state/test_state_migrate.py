"""``opus state migrate``: every record and the whole run history move to another backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from opus import Engine, LockInfo, StateError, Task, TaskProcessor
from opus.state.migrate import migrate_state
from opus.state.sqlite import SQLiteStateBackend


class Noop(TaskProcessor):
    api_version = "noop/v1"

    def create(self, task, ctx):
        return {"made": task.name, "spec": dict(ctx.spec)}

    update = create

    def delete(self, task, ctx):
        return None


TASKS = [Task("noop/v1", "N", {"name": f"t{i}"}, {"i": i, "nested": {"l": [i]}}) for i in range(6)]


def populate(url: str) -> SQLiteStateBackend:
    """Three runs over two contexts, the last one deleting two of the tasks."""
    state = SQLiteStateBackend(url)
    engine = Engine(state=state, entry_points=False)
    engine.register_processor(Noop)
    engine.run("apply", TASKS, context="dev")
    engine.run("apply", TASKS, context="prod")
    engine.run("delete", TASKS[:2], context="prod")
    return state


def snapshot(state) -> dict:
    runs = state.list_runs(None, limit=1000)
    contexts = sorted({r.context for r in runs})
    return {
        "records": {c: [r.to_dict() for r in state.list_records(c)] for c in contexts},
        "runs": [r.to_dict() for r in runs],
        "entries": {r.run_id: [e.to_dict() for e in state.run_entries(r.run_id)] for r in runs},
        "history": {
            c: {
                r["name"]: [e.to_dict() for e in state.history(c, r["name"])]
                for r in [x.to_dict() for x in state.list_records(c)]
            }
            for c in contexts
        },
    }


@pytest.mark.parametrize("target_kind", ["sqlite", "postgres"])
def test_migration_preserves_every_record_and_the_run_history(
    target_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    source = populate(f"sqlite:///{tmp_path}/source.db")
    if target_kind == "sqlite":
        target_url = f"sqlite:///{tmp_path}/target.db"
        target = SQLiteStateBackend(target_url)
    else:
        from opus.state.postgres import PostgresStateBackend

        target_url = request.getfixturevalue("pg_url")
        target = PostgresStateBackend(target_url)
    try:
        report = migrate_state(source, target)
        assert report.contexts == ["dev", "prod"]
        assert (report.records, report.runs) == (10, 3)
        assert snapshot(target) == snapshot(source)
        assert source.get_lock("dev") is None and target.get_lock("dev") is None
        with pytest.raises(StateError, match="already holds state for context"):
            migrate_state(source, target)
        # the migrated state is usable: the next apply sees everything unchanged
        engine = Engine(state=target, entry_points=False)
        engine.register_processor(Noop)
        result = engine.run("apply", TASKS, context="dev")
        assert {t.status for t in result.tasks.values()} == {"unchanged"}
    finally:
        source.close()
        target.close()


def test_migration_refuses_a_locked_source(tmp_path: Path) -> None:
    source = populate(f"sqlite:///{tmp_path}/source.db")
    source.try_lock(LockInfo("dev", "busy-run", os.getppid(), "elsewhere", 0.0))
    target = SQLiteStateBackend(f"sqlite:///{tmp_path}/target.db")
    with pytest.raises(StateError, match="locked by run busy-run"):
        migrate_state(source, target)
    assert target.list_runs(None) == []  # nothing was copied
    assert target.get_lock("prod") is None


def run_migrate(tmp_path: Path, target: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """``opus state migrate`` from the test's source database to ``target``, as a subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPUS_DISABLE")}
    argv = [
        sys.executable,
        "-m",
        "opus",
        "state",
        "migrate",
        "--from",
        f"sqlite:///{tmp_path}/source.db",
        "--to",
        target,
        *extra,
    ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)


def test_migrate_through_the_cli(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    populate(f"sqlite:///{tmp_path}/source.db").close()
    pg = bool(os.environ.get("OPUS_TEST_POSTGRES_URL"))
    target = request.getfixturevalue("pg_url") if pg else f"sqlite:///{tmp_path}/target.db"
    proc = run_migrate(tmp_path, target, "--output", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "contexts": ["dev", "prod"],
        "records": 10,
        "runs": 3,
        "entries": 14,
    }
    again = run_migrate(tmp_path, target)
    assert again.returncode == 2 and "already holds state" in again.stderr
    assert "Traceback" not in again.stderr
