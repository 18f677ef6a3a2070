"""Test processors and task builders shared by the core tests."""

from __future__ import annotations

import threading
from typing import Any

from opus import Result, Task, TaskContext, TaskProcessor


class RecordingProcessor(TaskProcessor):
    """Records every call; ``spec.fail_on`` names actions that raise."""

    api_version = "test/v1"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.contexts: list[TaskContext] = []
        self._mutex = threading.Lock()

    def _record(self, action: str, task: Task, ctx: TaskContext) -> None:
        with self._mutex:
            self.calls.append((action, task.name, dict(ctx.spec)))
            self.contexts.append(ctx)
        if action in (ctx.spec.get("fail_on") or []):
            raise RuntimeError(f"{task.name} refused to {action}")

    def create(self, task: Task, ctx: TaskContext) -> Result:
        self._record("create", task, ctx)
        return Result(
            outputs={"value": ctx.spec.get("value"), "name": task.name},
            resource_checksum="rc-" + task.name,
        )

    def update(self, task: Task, ctx: TaskContext) -> dict[str, Any]:
        self._record("update", task, ctx)
        return {"value": ctx.spec.get("value"), "name": task.name}

    def delete(self, task: Task, ctx: TaskContext) -> None:
        self._record("delete", task, ctx)

    def detect_drift(self, task: Task, ctx: TaskContext) -> bool:
        self._record("detect_drift", task, ctx)
        return bool(ctx.spec.get("drifted"))

    def rollback(self, task: Task, ctx: TaskContext) -> None:
        self._record("rollback", task, ctx)

    def names(self, action: str) -> list[str]:
        return [name for a, name, _ in self.calls if a == action]


class CreateOnlyProcessor(TaskProcessor):
    """Implements nothing but ``create``."""

    api_version = "create-only/v1"

    def create(self, task: Task, ctx: TaskContext) -> dict[str, Any]:
        return {"made": task.name}


def make_task(name: str, api_version: str = "test/v1", **metadata: Any) -> Task:
    spec = metadata.pop("spec", {})
    return Task(api_version, "Thing", {"name": name, **metadata}, spec)
