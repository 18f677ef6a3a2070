"""StateBackend.save_many: a batch of changes in one transaction, on every backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from opus.errors import StateError
from opus.model import HistoryEntry, LockInfo, RunRecord
from opus.state.base import StateBackend, StateChange
from opus.state.memory import MemoryStateBackend
from opus.state.sqlite import SQLiteStateBackend
from opus.testing.state_contract import HOST, entry, state  # the contract's records

#: ``make_backend``: makes clients of one store of the parametrized kind.


@pytest.fixture
def make_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    kind = request.param
    if kind == "memory":
        shared = MemoryStateBackend()
        yield lambda: shared
        return
    made: list[StateBackend] = []
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path}/state/opus.db"
    else:
        url = request.getfixturevalue("pg_url")

    def make() -> StateBackend:
        if kind == "sqlite":
            made.append(SQLiteStateBackend(url))
        else:
            from opus.state.postgres import PostgresStateBackend

            made.append(PostgresStateBackend(url))
        return made[-1]

    yield make
    for backend in made:
        backend.close()


Factory = Callable[[], StateBackend]

ALL = pytest.mark.parametrize("make_backend", ["memory", "sqlite", "postgres"], indirect=True)
DURABLE = pytest.mark.parametrize("make_backend", ["sqlite", "postgres"], indirect=True)


def run(run_id: str, context: str = "dev", started_at: float = 1.0) -> RunRecord:
    return RunRecord(run_id=run_id, context=context, command="apply", action="apply",
                     started_at=started_at, pid=123, host="h", user="me")  # fmt: skip


def lock(run_id: str, context: str = "dev", pid: int | None = None, host: str = HOST) -> LockInfo:
    import os

    return LockInfo(context=context, run_id=run_id, pid=os.getpid() if pid is None else pid,
                    host=host, since=1700000000.0)  # fmt: skip


@ALL
def test_save_many_applies_a_batch_in_order(make_backend: Factory) -> None:
    backend = make_backend()
    backend.save(state("old"), entry("r0", "old", at=0.5))
    backend.save_many(
        [
            StateChange.save(state("a", outputs={"v": 1}), entry("r1", "a", at=1.0)),
            StateChange.remove("dev", "old", entry("r1", "old", at=2.0)),
            StateChange.save(state("b", context="prod"), entry("r1", "b", "prod", at=3.0)),
            StateChange.save(state("c"), None),
        ]
    )
    backend.save_many([])  # nothing to do
    other = make_backend()  # a second client sees the whole batch
    assert [s.name for s in other.list_records("dev")] == ["a", "c"]
    assert other.get("dev", "a") == state("a", outputs={"v": 1})
    assert other.get("prod", "b") == state("b", context="prod")
    assert [(h.name, h.at) for h in other.run_entries("r1")] == [
        ("a", 1.0),
        ("old", 2.0),
        ("b", 3.0),
    ]
    assert [h.run_id for h in other.history("dev", "old")] == ["r1", "r0"]


@ALL
def test_save_many_keeps_the_order_of_changes_to_one_task(make_backend: Factory) -> None:
    backend = make_backend()
    backend.save_many(
        [
            StateChange.save(state("a", outputs={"v": 1}), entry("r1", "a", at=1.0)),
            StateChange.remove("dev", "a", entry("r1", "a", at=2.0)),
            StateChange.save(state("b", outputs={"v": 1})),
            StateChange.save(state("b", outputs={"v": 2})),
        ]
    )
    assert backend.get("dev", "a") is None
    got = backend.get("dev", "b")
    assert got is not None and got.outputs == {"v": 2}
    assert [h.at for h in backend.history("dev", "a")] == [2.0, 1.0]


@DURABLE
def test_save_many_is_all_or_nothing(make_backend: Factory) -> None:
    backend = make_backend()
    bad = HistoryEntry(run_id="r1", context="dev", name="b", action="create", status="done",
                       at=None)  # type: ignore[arg-type]  # NOT NULL in the schema  # fmt: skip
    with pytest.raises(StateError):
        backend.save_many(
            [StateChange.save(state("a"), entry("r1", "a")), StateChange.save(state("b"), bad)]
        )
    assert make_backend().list_records("dev") == []
    assert make_backend().run_entries("r1") == []
