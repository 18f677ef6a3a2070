"""A processor whose outputs are whatever the spec asks for, JSON or not: ``bad-outputs/v1``.

Load it with ``opus -p helpers_badoutputs`` (PYTHONPATH=tests). ``spec.output`` names the
value returned as output ``value``; create writes ``created-<task>`` and rollback removes it
and writes ``rolled-back-<task>`` in the working directory, so tests can see both happen.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from opus import Result, Task, TaskContext, TaskProcessor, hookimpl


class _Thing:
    pass


VALUES: dict[str, Any] = {
    "datetime": dt.datetime(2026, 11, 25, 12, 0),
    "set": {1, 2},
    "bytes": b"\x00raw",
    "object": _Thing(),
    "nan": float("nan"),
    "infinity": float("inf"),
    "nested": {"ok": [1, {"when": dt.date(2026, 1, 1)}]},
    "int-key": {1: "one"},
    "fine": {"list": [1, 2.5, "x", None, True], "map": {"a": "b"}},
}


class BadOutputs(TaskProcessor):
    api_version = "bad-outputs/v1"

    def create(self, task: Task, ctx: TaskContext) -> Result:
        Path(f"created-{task.name}").write_text("x")
        return Result(outputs={"value": VALUES[ctx.spec["output"]]})

    def update(self, task: Task, ctx: TaskContext) -> Result:
        return self.create(task, ctx)

    def delete(self, task: Task, ctx: TaskContext) -> None:
        Path(f"created-{task.name}").unlink(missing_ok=True)

    def rollback(self, task: Task, ctx: TaskContext) -> Result:
        Path(f"created-{task.name}").unlink(missing_ok=True)
        Path(f"rolled-back-{task.name}").write_text(ctx.error or "")
        return Result()


@hookimpl
def opus_register_processors() -> list[type[TaskProcessor]]:
    return [BadOutputs]
