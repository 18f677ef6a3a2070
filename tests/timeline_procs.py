"""A processor that records when each action ran, for the parallelism and failure tests.

``TimelineProcessor`` (apiVersion ``timeline/v1``) understands these spec keys:

- ``sleep``: seconds the action takes (default 0)
- ``fail``: actions that raise ``RuntimeError("<task> refused to <action>")``
- ``wait_for``: the name of an event (see :meth:`TimelineProcessor.event`) to wait for
  before finishing; ``sets``: an event to set when the action ends
- ``value``: echoed in the outputs; ``rollback_sleep``: seconds a rollback takes

Every call is recorded as a :class:`Span` with ``time.monotonic()`` start and end, and the
processor tracks how many actions ran at once (overall and per concurrency group).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from helpers_cli import task

from opus import Task, TaskContext, TaskProcessor


@dataclass
class Span:
    task: str
    action: str
    start: float
    end: float = 0.0


class TimelineProcessor(TaskProcessor):
    api_version = "timeline/v1"

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.contexts: dict[tuple[str, str], TaskContext] = {}
        self.running = 0
        self.max_running = 0
        self.group_running: dict[str, int] = {}
        self.group_max: dict[str, int] = {}
        self._events: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def event(self, name: str) -> threading.Event:
        with self._lock:
            return self._events.setdefault(name, threading.Event())

    def _act(self, action: str, task: Task, ctx: TaskContext) -> dict[str, Any]:
        group = task.concurrency_group
        with self._lock:
            span = Span(task.name, action, time.monotonic())
            self.spans.append(span)
            self.contexts[(task.name, action)] = ctx
            self.running += 1
            self.max_running = max(self.max_running, self.running)
            if group:
                self.group_running[group] = self.group_running.get(group, 0) + 1
                self.group_max[group] = max(self.group_max.get(group, 0), self.group_running[group])
        try:
            if ctx.spec.get("barrier") is not None:
                ctx.spec["barrier"].wait()
            pause = ctx.spec.get("rollback_sleep" if action == "rollback" else "sleep")
            if pause:
                time.sleep(pause)
            if ctx.spec.get("wait_for"):
                if not self.event(ctx.spec["wait_for"]).wait(10):
                    raise TimeoutError(f"{task.name}: event {ctx.spec['wait_for']} never came")
            if action in (ctx.spec.get("fail") or ()):
                raise RuntimeError(f"{task.name} refused to {action}")
            return {"value": ctx.spec.get("value"), "name": task.name}
        finally:
            with self._lock:
                span.end = time.monotonic()
                self.running -= 1
                if group:
                    self.group_running[group] -= 1
            if ctx.spec.get("sets"):
                self.event(ctx.spec["sets"]).set()

    def create(self, task: Task, ctx: TaskContext) -> dict[str, Any]:
        return self._act("create", task, ctx)

    def update(self, task: Task, ctx: TaskContext) -> dict[str, Any]:
        return self._act("update", task, ctx)

    def delete(self, task: Task, ctx: TaskContext) -> dict[str, Any]:
        return self._act("delete", task, ctx)

    def rollback(self, task: Task, ctx: TaskContext) -> None:
        self._act("rollback", task, ctx)

    # -- queries -----------------------------------------------------------------------------
    def span(self, task: str, action: str = "create") -> Span:
        return next(s for s in self.spans if s.task == task and s.action == action)

    def started(self, action: str | None = None) -> set[str]:
        return {s.task for s in self.spans if action is None or s.action == action}


class LimitedProcessor(TimelineProcessor):
    """The same, under another apiVersion, allowing two actions at once."""

    api_version = "timeline-limited/v1"
    max_concurrency = 2


def step(
    name: str, *deps: str, api_version: str = "timeline/v1", group: str | None = None, **spec: Any
) -> dict[str, Any]:
    """A manifest for the timeline processor depending on ``deps``, ``spec`` as keywords (a
    preset of :func:`helpers_cli.task`)."""
    metadata = {"concurrencyGroup": group} if group else {}
    return task(api_version, name, spec, depends=deps, **metadata)
