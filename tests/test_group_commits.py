"""Group commits: completions handled together are saved in one transaction, and a task is
reported (and its dependents released) only once its record is committed."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from support_processors import RecordingProcessor, make_task

from opus import Engine, Hook, StateError, hookimpl
from opus.state.base import StateChange
from opus.state.sqlite import SQLiteStateBackend


class SlowFirstCommit(SQLiteStateBackend):
    """SQLite state whose first batch commit takes a while, so completions pile up."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.batches: list[list[str]] = []

    def save_many(self, changes: Sequence[StateChange]) -> None:
        if not self.batches:
            time.sleep(0.4)
        super().save_many(changes)
        self.batches.append([c.name for c in changes])


class CommittedBeforeReported(Hook):
    """Reads a *second* connection to the same file whenever a task is reported."""

    def __init__(self, url: str) -> None:
        self.reader = SQLiteStateBackend(url)
        self.seen: dict[str, bool] = {}
        self.order: list[str] = []
        self.mutex = threading.Lock()

    @hookimpl
    def opus_task_start(self, task: Any, ctx: Any) -> None:
        with self.mutex:
            self.order.append(f"start {task.name}")

    @hookimpl
    def opus_task_done(self, task: Any, ctx: Any, outcome: Any) -> None:
        record = self.reader.get(ctx.context, task.name)
        with self.mutex:
            self.seen[task.name] = record is not None and record.status == "done"
            self.order.append(f"done {task.name}")


def test_completions_are_committed_together_and_before_they_are_reported(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/state.db"
    state = SlowFirstCommit(url)
    hook = CommittedBeforeReported(url)
    wide = [make_task(f"w{i}") for i in range(6)]
    child = make_task("child", dependencies=[{"tasks": ["w5"]}])
    with Engine(state=state, entry_points=False, parallelism=6) as engine:
        engine.register_processor(RecordingProcessor)
        engine.register(hook)
        result = engine.run("apply", [*wide, child], context="dev")
    assert result.ok, result.counts()
    assert hook.seen == dict.fromkeys([*(t.name for t in wide), "child"], True)
    writes = [name for batch in state.batches for name in batch]
    assert sorted(writes) == sorted([*(t.name for t in wide), "child"])
    assert len(state.batches) < len(writes)  # grouped: fewer commits than tasks
    assert max(len(batch) for batch in state.batches) > 1
    # the child starts only after its dependency's record is committed and reported
    assert hook.order.index("done w5") < hook.order.index("start child")
    hook.reader.close()


class FailingBatch(SQLiteStateBackend):
    """SQLite state that refuses to write one task's record."""

    def save_many(self, changes: Sequence[StateChange]) -> None:
        if any(c.name == "bad" and c.record and c.record.status == "done" for c in changes):
            raise StateError("disk full (simulated for task 'bad')")
        super().save_many(changes)


def test_a_write_that_fails_fails_only_its_own_task(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/state.db"
    tasks = [make_task("good"), make_task("bad"), make_task("after", dependencies=[
        {"tasks": ["bad"]}])]  # fmt: skip
    with Engine(state=FailingBatch(url), entry_points=False, parallelism=4) as engine:
        engine.register_processor(RecordingProcessor)
        result = engine.run("apply", tasks, context="dev", keep_going=True)
    assert result.tasks["good"].status == "done"
    assert result.tasks["bad"].status == "failed"
    assert "disk full" in (result.tasks["bad"].error or "")
    assert result.tasks["after"].status == "skipped"
    reader = SQLiteStateBackend(url)
    assert reader.get("dev", "good") is not None
    bad = reader.get("dev", "bad")
    assert bad is not None and bad.status == "failed"  # the failure itself was recorded
    reader.close()
