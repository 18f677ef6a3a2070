"""Refresh ahead (opus.prefetch): the refreshes of apply/plan start in batches before the
driver loop; decisions and what processors see are the same as refreshing in the loop."""

from __future__ import annotations

import threading
import time
from typing import Any

from support_processors import RecordingProcessor, make_task

from opus import Engine, Plugins, Result


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
