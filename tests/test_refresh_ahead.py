"""Refresh ahead (opus.prefetch): the refreshes of apply/plan start in batches before the
driver loop; decisions and what processors see are the same as refreshing in the loop."""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from support_processors import RecordingProcessor, make_task

from opus import Engine, Plugins, Result, prefetch
from opus.executors.base import Executor, run_action
from opus.executors.local import ThreadExecutor


class Counting(RecordingProcessor):
    """Measures how many detect_drift calls run at once."""

    api_version = "count/v1"

    def __init__(self) -> None:
        super().__init__()
        self.now = self.peak = 0
        self.lock = threading.Lock()

    def detect_drift(self, task: Any, ctx: Any) -> Result:
        self._record("detect_drift", task, ctx)
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        time.sleep(0.01)
        with self.lock:
            self.now -= 1
        return Result(drifted=bool(ctx.spec.get("drifted")))


def engine_with(proc: Any, parallelism: int = 3) -> Engine:
    engine = Engine(state="memory://", plugins=Plugins(entry_points=False), parallelism=parallelism)
    engine.register_processor(proc)
    return engine


def test_every_recorded_task_is_refreshed_once_within_parallelism() -> None:
    proc = Counting()
    tasks = [make_task(f"t{i}", "count/v1", spec={"value": i}) for i in range(40)]
    with engine_with(proc) as engine:
        engine.run("apply", tasks)
        proc.calls.clear()
        result = engine.run("apply", tasks)
    assert {t.status for t in result.tasks.values()} == {"unchanged"}
    assert sorted(proc.names("detect_drift")) == sorted(t.name for t in tasks)
    assert 1 <= proc.peak <= 3


def test_a_drifted_task_is_repaired_and_a_dependent_sees_new_outputs() -> None:
    """b depends on a (no reference in its spec, so it is refreshed ahead); a drifted and is
    updated: b's context must carry a's new outputs, not the ones from before the run."""
    proc = RecordingProcessor()
    b = make_task("b", spec={"value": 2, "drifted": True}, dependencies=[{"tasks": ["a"]}])
    with engine_with(proc) as engine:
        engine.run("apply", [make_task("a", spec={"value": 1}), b])
        proc.contexts.clear()
        result = engine.run("apply", [make_task("a", spec={"value": 10}), b])
    assert result.tasks["a"].action == "update"
    assert result.tasks["b"].action == "update" and result.tasks["b"].drifted is True
    b_update = [c for c in proc.contexts if c.task_name == "b" and c.action == "update"][0]
    assert b_update.variables["a:value"] == 10
    b_refresh = [c for c in proc.contexts if c.task_name == "b" and c.action == "detect_drift"]
    assert len(b_refresh) == 1 and b_refresh[0].spec == {"value": 2, "drifted": True}


def test_a_refresh_started_ahead_sees_the_recorded_spec_and_desires_the_manifest_s() -> None:
    """The refresh's context: ``spec`` is what was applied, ``desired_spec`` the manifest's
    spec as resolved now (a run variable changed it), the action ``detect_drift``, the
    run's id; the update then gets the desired spec as its ``spec``."""
    proc = RecordingProcessor()
    task = make_task("t", spec={"value": "${VAR:level}"})
    with engine_with(proc) as engine:
        engine.run("apply", [task], variables={"level": 1})
        proc.contexts.clear()
        result = engine.run("apply", [task], variables={"level": 2})
    refresh, update = proc.contexts
    assert (refresh.action, update.action) == ("detect_drift", "update")
    assert refresh.spec == {"value": 1} and refresh.desired_spec == {"value": 2}
    assert update.spec == update.desired_spec == {"value": 2}
    assert refresh.run_id == update.run_id == result.run_id
    assert refresh.cancelled is update.cancelled and not refresh.cancelled.is_set()


def test_a_failing_refresh_in_a_batch_fails_only_its_own_task() -> None:
    proc = RecordingProcessor()
    tasks = [
        make_task(f"t{i}", spec={"value": i, "fail_on": ["detect_drift"] if i == 7 else []})
        for i in range(50)
    ]
    with engine_with(proc) as engine:
        engine.run("apply", tasks)
        result = engine.run("apply", tasks, keep_going=True)
    failed = {n: o.error for n, o in result.tasks.items() if o.status != "unchanged"}
    assert list(failed) == ["t7"]
    assert failed["t7"] == "refresh (detect_drift) failed: RuntimeError: t7 refused to detect_drift"


def test_a_stopped_run_refreshes_no_task_it_will_not_start() -> None:
    """The first task's refresh fails and the run stops: no batch is sent after that (two
    batches were sent ahead, and one more may go when the second comes in first)."""
    proc = RecordingProcessor()
    count, parallelism = 400, 2
    tasks = [
        make_task(f"t{i:03}", spec={"value": i, "fail_on": ["detect_drift"] if i == 0 else []})
        for i in range(count)
    ]
    with engine_with(proc, parallelism=parallelism) as engine:
        engine.run("apply", tasks)
        proc.calls.clear()
        result = engine.run("apply", tasks)
    assert result.tasks["t000"].status == "failed"
    assert not result.ok
    refreshed = proc.names("detect_drift")
    batch = min(prefetch.MAX_BATCH, count // (parallelism * 4))
    assert "t000" in refreshed and len(refreshed) <= 3 * batch
    statuses = {o.status for n, o in result.tasks.items() if n not in refreshed}
    assert statuses == {"skipped"}


class BatchOnlyExecutor(ThreadExecutor):
    """An executor written before ``start_batch``: it overrides ``submit_batch`` alone."""

    def __init__(self) -> None:
        super().__init__()
        self.batches = 0

    def submit_batch(self, items: Any) -> Any:
        self.batches += 1
        return super().submit_batch(items)


class SubmitOnlyExecutor(Executor):
    """The minimal executor of the docs: ``start``, ``submit`` and ``shutdown``."""

    name = "submit-only"

    def start(self, plugins: Any, max_workers: int) -> None:
        self.plugins = plugins
        self.pool = ThreadPoolExecutor(max_workers)

    def submit(self, task: Any, ctx: Any) -> Any:
        return self.pool.submit(run_action, self.plugins, task, ctx)

    def shutdown(self) -> None:
        self.pool.shutdown()


def test_executors_without_start_batch_still_refresh_ahead() -> None:
    for executor in (BatchOnlyExecutor(), SubmitOnlyExecutor()):
        proc = RecordingProcessor()
        tasks = [make_task(f"t{i}", spec={"value": i, "drifted": i == 5}) for i in range(30)]
        engine = Engine(state="memory://", plugins=Plugins(entry_points=False), executor=executor)
        engine.register_processor(proc)
        with engine:
            engine.run("apply", tasks)
            proc.calls.clear()
            result = engine.run("apply", tasks)
        assert sorted(proc.names("detect_drift")) == sorted(t.name for t in tasks)
        assert result.tasks["t5"].action == "update" and result.tasks["t5"].drifted is True
        assert {o.status for n, o in result.tasks.items() if n != "t5"} == {"unchanged"}


def test_the_batch_only_executor_is_given_the_batches() -> None:
    executor = BatchOnlyExecutor()
    proc = RecordingProcessor()
    tasks = [make_task(f"t{i}", spec={"value": i}) for i in range(30)]
    engine = Engine(
        state="memory://", plugins=Plugins(entry_points=False), executor=executor, parallelism=2
    )
    engine.register_processor(proc)
    with engine:
        engine.run("apply", tasks)
        executor.batches = 0
        assert engine.run("apply", tasks).ok
    assert executor.batches >= 2  # 30 refreshes in batches, each through submit_batch


class Stuck(RecordingProcessor):
    """A drift check that runs until it is cancelled (at most 20 s)."""

    api_version = "stuck/v1"

    def detect_drift(self, task: Any, ctx: Any) -> Result:
        self._record("detect_drift", task, ctx)
        if ctx.spec.get("stuck"):
            for _ in range(200):
                if ctx.is_cancelled():
                    break
                time.sleep(0.1)
        return Result(drifted=False)


@pytest.mark.parametrize("where", ["engine", "metadata"])
def test_a_timeout_bounds_the_refresh(where: str) -> None:
    proc = Stuck()
    timeout = {"timeout": 0.3} if where == "metadata" else {}
    tasks = [
        make_task("slow", "stuck/v1", spec={"stuck": True}, **timeout),
        *(make_task(f"t{i}", "stuck/v1", spec={"value": i}) for i in range(20)),
    ]
    engine = Engine(
        state="memory://",
        plugins=Plugins(entry_points=False),
        task_timeout=0.3 if where == "engine" else None,
        keep_going=True,
    )
    engine.register_processor(proc)
    with engine:
        engine.run("apply", tasks)  # nothing recorded yet: no refresh
        started = time.monotonic()
        result = engine.run("apply", tasks)
    assert time.monotonic() - started < 10
    assert result.tasks["slow"].status == "failed"
    assert "detect_drift timed out after 0.3s" in (result.tasks["slow"].error or "")
    assert {o.status for n, o in result.tasks.items() if n != "slow"} == {"unchanged"}


class Interrupting(RecordingProcessor):
    """``spec.signals`` SIGINTs from the drift check of one task; ``spec.stuck`` checks run
    until they are cancelled and say so."""

    api_version = "interrupting/v1"

    def __init__(self) -> None:
        super().__init__()
        self.cancelled = threading.Event()
        self.reasons: list[str | None] = []

    def detect_drift(self, task: Any, ctx: Any) -> Result:
        self._record("detect_drift", task, ctx)
        for _ in range(ctx.spec.get("signals", 0)):
            time.sleep(0.2)  # the other check is running by now
            os.kill(os.getpid(), signal.SIGINT)
        if ctx.spec.get("stuck"):
            for _ in range(200):
                if ctx.is_cancelled():
                    self.reasons.append(ctx.cancelled.reason)
                    self.cancelled.set()
                    break
                time.sleep(0.05)
        return Result(drifted=False)


def test_a_second_interrupt_cancels_the_refreshes_started_ahead() -> None:
    proc = Interrupting()
    tasks = [
        make_task("stuck", "interrupting/v1", spec={"stuck": True}),
        make_task("sender", "interrupting/v1", spec={"signals": 2}),
    ]
    with engine_with(proc, parallelism=2) as engine:
        engine.run("apply", tasks)  # recorded: the next apply refreshes with these specs
        started = time.monotonic()
        result = engine.run("apply", tasks)
    assert result.interrupted and result.abandoned
    assert proc.cancelled.wait(5), "the stuck drift check was never cancelled"
    assert time.monotonic() - started < 8
    assert proc.reasons == ["interrupted"]
