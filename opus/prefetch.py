"""Refresh ahead: the ``detect_drift`` calls of apply/plan, started before the driver loop
in batches (one executor submission for many cheap calls).

A recorded task qualifies when its processor implements ``detect_drift`` and has no
``max_concurrency``, it is in no limited concurrency group, its recorded spec holds no masked
value, and its spec refers to no task output (so its desired spec, resolved here once, is
what the loop would resolve). Batches are started at most ``parallelism`` at a time; the
tasks of the loop that wait for their answer are parked until their batch is in. Every other
task is refreshed in the loop as before.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from .actions import Action
from .planner import MASK

if TYPE_CHECKING:
    from .model import Task
    from .processor import TaskContext
    from .run import Run

logger = logging.getLogger(__name__)

#: Largest batch: long enough to amortise a submission, short enough to balance workers.
MAX_BATCH = 64


def _masked(value: Any) -> bool:
    if isinstance(value, Mapping):
        return any(_masked(v) for v in value.values())
    if isinstance(value, list):
        return any(_masked(v) for v in value)
    return isinstance(value, str) and MASK in value


class RefreshAhead:
    """The refreshes of one run started ahead of the loop (see the module docstring)."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self._desired: dict[str, TaskContext] = {}
        self._refresh: dict[str, TaskContext] = {}
        self._answers: dict[str, tuple[Any, BaseException | None]] = {}
        self._queue: deque[list[str]] = deque()
        self._in_flight = 0

    # -- set-up -----------------------------------------------------------------------------
    def _eligible(self) -> Iterator[str]:
        run = self.run
        if not run.refresh or run.action not in (Action.APPLY, Action.PLAN) or run.destroy:
            return
        if run.saved is not None:
            return
        refreshes: dict[str, bool] = {}  # apiVersion -> whether its processor refreshes
        for name in run.order:
            prior = run.prior.get(name)
            if prior is None or prior.spec_checksum is None or name in run.orphans:
                continue
            api = run.tasks[name].api_version
            refreshed = refreshes.get(api)
            if refreshed is None:
                refreshed = refreshes[api] = api in run.registry and run.registry.get(api).supports(
                    Action.DETECT_DRIFT
                )
            limited = run._limits_of is not None and run._limits_of(name)
            if not refreshed or limited or _masked(prior.applied_spec or {}):
                continue
            if run.graph.dependencies.get(name):  # it may refer to an output of another task
                try:
                    if any(ref.task for ref in run.tasks[name].references(run.prefixes)):
                        continue
                except Exception:  # a malformed reference: the loop reports it
                    continue
            yield name

    def start(self) -> None:
        """Prepare every eligible task's refresh and start the first batches."""
        run = self.run
        names: list[str] = []
        for name in self._eligible():
            try:
                ctx = run._context(name)
            except Exception:  # resolving failed: the loop resolves again and reports it
                continue
            assert ctx is not None
            prior = run.prior[name]
            self._desired[name] = ctx
            self._refresh[name] = ctx.evolve(
                action=Action.DETECT_DRIFT, spec=dict(prior.applied_spec or {})
            )
            names.append(name)
        if not names:
            return
        workers = max(1, run.parallelism)
        size = max(1, min(MAX_BATCH, len(names) // (workers * 4)))
        self._queue.extend(names[i : i + size] for i in range(0, len(names), size))
        logger.debug("refreshing %d task(s) ahead in %d batch(es)", len(names), len(self._queue))
        while self._queue and self._in_flight < workers:
            self._send(self._queue.popleft())

    def _send(self, names: list[str]) -> None:
        run = self.run
        items: list[tuple[Task, TaskContext]] = [(run.tasks[n], self._refresh[n]) for n in names]
        future = run.executor.submit_batch(items)
        self._in_flight += 1
        completions = run._completions

        def done(fut: Any) -> None:
            try:
                value, error = fut.result(), None
            except BaseException as exc:  # noqa: BLE001 - the whole batch failed
                value, error = None, exc
            completions.put(("", "refresh-batch", (names, value), error))

        future.add_done_callback(done)

    # -- the loop's side --------------------------------------------------------------------
    def covers(self, name: str) -> bool:
        return name in self._desired

    def desired_context(self, name: str) -> TaskContext:
        """The task's context as resolved ahead (before any task of this run changed)."""
        return self._desired[name]

    def refresh_context(self, name: str) -> TaskContext:
        return self._refresh[name]

    def answer(self, name: str) -> tuple[Any, BaseException | None] | None:
        """The refresh's ``(result, error)`` if its batch is in (taken once), else None."""
        return self._answers.pop(name, None)

    def batch_done(
        self, value: Any, error: BaseException | None
    ) -> list[tuple[str, Any, BaseException | None]]:
        """Record a completed batch and start the next; the answers of its tasks."""
        names, results = value
        self._in_flight -= 1
        ready = self._deliver(names, results if error is None else [(None, error)] * len(names))
        if self._queue:
            batch = self._queue.popleft()
            try:
                self._send(batch)
            except Exception as exc:  # the executor refused: those refreshes fail
                ready += self._deliver(batch, [(None, exc)] * len(batch))
        return ready

    def _deliver(
        self, names: list[str], pairs: list[tuple[Any, BaseException | None]]
    ) -> list[tuple[str, Any, BaseException | None]]:
        """Answers for parked tasks (started, waiting) now; the others kept for later."""
        ready = []
        for name, (result, err) in zip(names, pairs, strict=True):
            if name in self.run._in_flight:
                ready.append((name, result, err))
            else:
                self._answers[name] = (result, err)
        return ready
