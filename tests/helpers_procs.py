"""Test processors, loadable in the CLI with ``opus -p helpers_procs`` (PYTHONPATH=tests).

Processors talk to the test through files in ``$OPUS_TEST_DIR`` (nothing is written
when it is unset):

- ``events.log``: one line per event, ``EVENT TASK PID MONOTONIC_NS``, appended atomically.
  Events: ``start`` (action began), ``holding`` (blocked by the hold file), ``done``
  (action finished), ``delete``, ``rollback``.
- ``hold``: while this file exists, a starting ``opus-test/slow-v1`` action writes
  ``holding`` and waits. Tests use it to freeze a run at a known point (then kill it,
  or try a second run against its lock) and delete it to let the run go on.

Processors:

- ``opus-test/slow-v1`` (:class:`SlowStep`): sleeps ``spec.delay`` seconds (default 0.1),
  outputs ``{"value": spec.value}``.
- ``opus-test/fail-v1`` (:class:`FailingStep`): ``create``/``update`` raise with
  ``spec.message``; ``rollback`` is logged.
- ``opus-test/echo-v1`` (:class:`EchoState`): outputs what it was told about the task's
  previous record (``ctx.state``), so tests can check what processors receive.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from opus import Result, Task, TaskContext, TaskProcessor, hookimpl

SLOW = "opus-test/slow-v1"
FAIL = "opus-test/fail-v1"
ECHO = "opus-test/echo-v1"

_write_lock = threading.Lock()


def events_dir() -> Path | None:
    """``$OPUS_TEST_DIR`` as a path, or ``None``."""
    value = os.environ.get("OPUS_TEST_DIR")
    return Path(value) if value else None


def log_event(event: str, task: str) -> None:
    """Append ``EVENT TASK PID NS`` to ``events.log`` (one write per line)."""
    where = events_dir()
    if where is None:
        return
    line = f"{event} {task} {os.getpid()} {time.monotonic_ns()}\n".encode()
    with _write_lock:
        fd = os.open(where / "events.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


def read_events(where: Path) -> list[tuple[str, str, int, int]]:
    """The parsed lines of ``where/events.log`` (``[]`` when it does not exist)."""
    path = where / "events.log"
    if not path.exists():
        return []
    events = []
    for line in path.read_text().splitlines():
        event, task, pid, ns = line.split()
        events.append((event, task, int(pid), int(ns)))
    return events


def events_of(where: Path, event: str, pid: int | None = None) -> list[str]:
    """Task names of ``event`` in ``where/events.log`` (only process ``pid``'s, if given)."""
    return [t for e, t, p, _ in read_events(where) if e == event and (pid is None or p == pid)]


def _wait_while_held(task: str) -> None:
    where = events_dir()
    if where is None or not (where / "hold").exists():
        return
    log_event("holding", task)
    while (where / "hold").exists():
        time.sleep(0.01)


class SlowStep(TaskProcessor):
    """Sleeps ``spec.delay`` seconds per action; honours the hold file."""

    api_version = SLOW

    def _work(self, task: Task, ctx: TaskContext) -> dict[str, Any]:
        log_event("start", task.name)
        _wait_while_held(task.name)
        time.sleep(float(ctx.spec.get("delay", 0.1)))
        log_event("done", task.name)
        return {"value": ctx.spec.get("value")}

    def create(self, task: Task, ctx: TaskContext) -> dict[str, Any]:
        return self._work(task, ctx)

    def update(self, task: Task, ctx: TaskContext) -> dict[str, Any]:
        return self._work(task, ctx)

    def delete(self, task: Task, ctx: TaskContext) -> None:
        log_event("delete", task.name)


class FailingStep(TaskProcessor):
    """Always fails to create or update, with ``spec.message``."""

    api_version = FAIL

    def create(self, task: Task, ctx: TaskContext) -> None:
        raise RuntimeError(str(ctx.spec.get("message", "boom")))

    update = create

    def delete(self, task: Task, ctx: TaskContext) -> None:
        log_event("delete", task.name)

    def rollback(self, task: Task, ctx: TaskContext) -> None:
        log_event("rollback", task.name)


class EchoState(TaskProcessor):
    """Returns, as outputs, what ``ctx.state`` said about the previous record."""

    api_version = ECHO

    def _echo(self, task: Task, ctx: TaskContext) -> Result:
        prior = ctx.state
        return Result(
            outputs={
                "action": ctx.action,
                "value": ctx.spec.get("value"),
                "prior": None
                if prior is None
                else {
                    "run_id": prior.run_id,
                    "status": prior.status,
                    "applied_spec": dict(prior.applied_spec or {}),
                    "spec_checksum": prior.spec_checksum,
                    "value": prior.outputs.get("value"),
                    "resource_checksum": prior.resource_checksum,
                },
            },
            resource_checksum=f"echo-{ctx.spec.get('value')}",
        )

    def create(self, task: Task, ctx: TaskContext) -> Result:
        return self._echo(task, ctx)

    def update(self, task: Task, ctx: TaskContext) -> Result:
        return self._echo(task, ctx)

    def delete(self, task: Task, ctx: TaskContext) -> None:
        log_event("delete", task.name)


@hookimpl
def opus_register_processors() -> list[type[TaskProcessor]]:
    return [SlowStep, FailingStep, EchoState]
