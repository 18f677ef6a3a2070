"""Refresh ahead: the ``detect_drift`` calls of apply/plan, started before the driver loop
needs them, in batches (one executor hand-off for many cheap calls).

A recorded task qualifies when its processor implements ``detect_drift`` and has no
``max_concurrency``, it is in no limited concurrency group, it has no timeout (the loop
watches deadlines and cancels what runs over), its recorded spec holds no masked value, and
its spec refers to no task output (so its desired spec, resolved when its batch is prepared,
is what the loop would resolve). Batches are prepared and started at most ``parallelism`` at
a time, each when an earlier one is in, so a run holds the contexts of a few batches at
once, not of every task (fewer live objects: less for the cyclic garbage collector to walk,
less memory). The tasks of the loop that wait for their answer are parked until their batch
is in. Every other task is refreshed in the loop as before.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from .actions import Action
from .planner import MASK, kind_changed
from .variables import SCALAR_TYPES

if TYPE_CHECKING:
    from .model import Task
    from .processor import TaskContext
    from .run import Run

logger = logging.getLogger(__name__)

#: Largest batch: long enough to amortise a hand-off, short enough to balance workers.
MAX_BATCH = 64

#: A refresh's answer: ``(result, error)``.
Answer = tuple[Any, "BaseException | None"]


def _masked(value: Any) -> bool:
    """Whether a recorded spec holds a masked secret (``***``) anywhere."""
    kind = type(value)
    if kind is str:
        return MASK in value
    if kind in SCALAR_TYPES:
        return False
    if kind is dict:  # what state gives back: no ABC check per value
        for item in value.values():
            if type(item) in SCALAR_TYPES:
                continue
            if _masked(item):
                return True
        return False
    if isinstance(value, Mapping):
        return any(_masked(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_masked(v) for v in value)
    return isinstance(value, str) and MASK in value


class RefreshAhead:
    """The refreshes of one run started ahead of the loop (see the module docstring)."""

    def __init__(self, run: Run) -> None:
        self.run = run
        #: every task refreshed ahead whose answer the loop has not taken yet
        self._covered: set[str] = set()
        #: refresh contexts prepared for a batch (or asked for by the loop first), until
        #: answered; the task's desired context is made from its refresh's when it is decided
        self._contexts: dict[str, TaskContext] = {}
        self._answers: dict[str, Answer] = {}
        self._queue: deque[list[str]] = deque()
        self._in_flight = 0

    # -- set-up -----------------------------------------------------------------------------
    def _eligible(self) -> Iterator[str]:
        run = self.run
        if not run.refresh or run.action not in (Action.APPLY, Action.PLAN) or run.destroy:
            return
        if run.saved is not None or run.task_timeout:
            return  # a timeout bounds every refresh: only the loop watches deadlines
        prior_of, orphans, tasks = run.prior.get, run.orphans, run.tasks
        dependencies, limits_of = run.graph.dependencies, run._limits_of
        refreshes: dict[str, bool] = {}  # apiVersion -> whether its processor refreshes
        for name in run.order:
            prior = prior_of(name)
            if prior is None or prior.spec_checksum is None or name in orphans:
                continue
            task = tasks[name]
            if task.timeout or kind_changed(prior, task):  # (the loop decides a replace)
                continue
            api = task.api_version
            refreshed = refreshes.get(api)
            if refreshed is None:
                refreshed = refreshes[api] = api in run.registry and run.registry.get(api).supports(
                    Action.DETECT_DRIFT
                )
            if not refreshed or (limits_of is not None and limits_of(name)):
                continue
            if _masked(prior.applied_spec or {}):
                continue
            if dependencies.get(name):  # it may refer to an output of another task
                try:
                    if any(ref.task for ref in task.references(run.prefixes)):
                        continue
                except Exception:  # a malformed reference: the loop reports it
                    continue
            yield name

    def start(self) -> None:
        """Find the tasks to refresh ahead and start the first batches."""
        names = list(self._eligible())
        if not names:
            return
        self._covered = set(names)
        workers = max(1, self.run.parallelism)
        size = max(1, min(MAX_BATCH, len(names) // (workers * 4)))
        self._queue.extend(names[i : i + size] for i in range(0, len(names), size))
        logger.debug("refreshing %d task(s) ahead in %d batch(es)", len(names), len(self._queue))
        while self._queue and self._in_flight < workers:
            self._send_next()

    def _prepare(self, names: list[str]) -> list[tuple[Task, TaskContext]]:
        """The batch's ``(task, refresh context)`` pairs; a task whose spec does not resolve
        is left to the loop (which resolves it again and reports the error), and a task the
        run will not start (skipped, or the run stopped) is not refreshed."""
        run = self.run
        tasks, done, in_loop = run.tasks, run.result.tasks, run._in_flight
        stopped = run._stop_reason is not None
        items: list[tuple[Task, TaskContext]] = []
        for name in names:
            if name in done or (stopped and name not in in_loop):
                self._covered.discard(name)
                continue
            ctx = self._contexts.get(name)
            if ctx is None:
                try:
                    ctx = self._make_context(name)
                except Exception:  # resolving failed: the loop resolves again and reports it
                    self._covered.discard(name)
                    continue
            items.append((tasks[name], ctx))
        return items

    def _make_context(self, name: str) -> TaskContext:
        """The refresh's context: the recorded spec, and the desired one resolved now."""
        run = self.run
        refresh = run._context(name, applied=dict(run.prior[name].applied_spec or {}))
        assert refresh is not None
        self._contexts[name] = refresh
        return refresh

    def _send_next(self) -> list[tuple[str, Answer]]:
        """Start the next batch that has work; the answers of parked tasks if the executor
        refused it."""
        run = self.run
        while self._queue:
            items = self._prepare(self._queue.popleft())
            if not items:
                continue
            names = [task.name for task, _ in items]
            try:
                run.executor.start_batch(items, self._done_callback(names))
            except Exception as exc:  # the executor refused: those refreshes fail
                return self._deliver(names, [(None, exc)] * len(names))
            self._in_flight += 1
            return []
        return []

    def _done_callback(self, names: list[str]) -> Any:
        put = self.run._completions.put

        def done(value: Any, error: BaseException | None) -> None:
            put(("", "refresh-batch", (names, value), error))

        return done

    # -- the loop's side --------------------------------------------------------------------
    def covers(self, name: str) -> bool:
        return name in self._covered

    def take(self, name: str) -> tuple[TaskContext, Answer | None]:
        """The context of the task's refresh (prepared now if its batch is not yet; its
        ``desired_spec`` is the task's spec as resolved ahead), and the refresh's
        ``(result, error)`` if its batch is in (taken once; else ``None``: the task waits)."""
        ctx = self._contexts.get(name)
        if ctx is None:
            ctx = self._make_context(name)
        answer = self._answers.pop(name, None)
        if answer is not None:
            self._taken(name)
        return ctx, answer

    def cancel(self, reason: str) -> None:
        """Cancel (with ``force``) every refresh started ahead whose answer is not taken:
        the second Ctrl-C, when the run stops waiting."""
        for ctx in list(self._contexts.values()):
            ctx.cancelled.cancel(reason, force=True)

    def _taken(self, name: str) -> None:
        self._covered.discard(name)
        self._contexts.pop(name, None)

    def batch_done(self, value: Any, error: BaseException | None) -> list[tuple[str, Answer]]:
        """Record a completed batch; the answers of parked tasks (then :meth:`refill`)."""
        names, answers = value
        self._in_flight -= 1
        if error is None and len(answers) != len(names):
            error = RuntimeError(
                f"the executor returned {len(answers)} refresh result(s) "
                f"for a batch of {len(names)}"
            )
        if error is not None:
            answers = [(None, error)] * len(names)
        return self._deliver(names, answers)

    def refill(self) -> list[tuple[str, Answer]]:
        """Start the next batch, after the answers of the last one were acted on (so a run
        that stopped meanwhile starts no refresh it will not use); the answers of parked
        tasks if the executor refused it."""
        return self._send_next() if self._queue else []

    def _deliver(self, names: list[str], answers: list[Answer]) -> list[tuple[str, Answer]]:
        """Answers for parked tasks (started, waiting) now; the others kept for later."""
        ready = []
        in_loop, kept = self.run._in_flight, self._answers
        for name, answer in zip(names, answers, strict=True):
            if name in in_loop:
                ready.append((name, answer))
                self._taken(name)
            else:
                kept[name] = answer
        return ready
