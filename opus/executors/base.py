"""The executor seam: where task actions run (threads here, a Dask cluster, ...)."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..model import Result, Task
    from ..plugins import Plugins
    from ..processor import TaskContext


#: Called with ``(result, None)`` or ``(None, exception)`` when an action ends.
Done = Callable[[Any, "BaseException | None"], None]


class TaskFuture(Protocol):
    """What :meth:`Executor.submit` returns (``concurrent.futures`` and Dask futures fit)."""

    def result(self, timeout: float | None = None) -> Any: ...

    def add_done_callback(self, fn: Any) -> None: ...


class Executor(ABC):
    """Runs ``opus_process_task`` for one task somewhere and returns a future of its Result.

    The engine (the driver) keeps scheduling, variables and state; executors only run
    task actions. ``start`` is called once per run before any ``submit``; ``shutdown``
    once after.
    """

    #: Shown in logs and ``RunResult``.
    name: str = "executor"

    @abstractmethod
    def start(self, plugins: Plugins, max_workers: int) -> None:
        """Prepare to run up to ``max_workers`` actions at once with ``plugins``."""

    @abstractmethod
    def submit(self, task: Task, ctx: TaskContext) -> TaskFuture:
        """Start ``ctx.action`` on ``task``; the future resolves to a :class:`Result`."""

    @abstractmethod
    def shutdown(self) -> None:
        """End of a run: running actions are allowed to finish."""

    def start_action(self, task: Task, ctx: TaskContext, done: Done) -> None:
        """Start ``ctx.action`` on ``task`` and call ``done(result, error)`` once it ends,
        from any thread; what the driver calls for every action.

        The default wraps :meth:`submit`; an executor that can hand work over without a
        future (the local thread pool) overrides it.
        """
        future = self.submit(task, ctx)

        def finished(fut: Any) -> None:
            try:
                value, error = fut.result(), None
            except BaseException as exc:  # noqa: BLE001 - reported as the task's error
                value, error = None, exc
            done(value, error)

        future.add_done_callback(finished)

    def submit_batch(self, items: Sequence[tuple[Task, TaskContext]]) -> TaskFuture:
        """Run the actions of ``items`` as one unit of work (used for the refresh before
        apply/plan: many cheap ``detect_drift`` calls). The future resolves to a list of
        ``(result, error)`` pairs in order; an action's exception is its pair's error.

        The default submits each item and gathers them; an executor for which one
        submission costs more than a cheap action overrides it.
        """
        futures = [self.submit(task, ctx) for task, ctx in items]
        gathered: Future[list[tuple[Any, BaseException | None]]] = Future()
        left = [len(futures)]
        lock = threading.Lock()

        def one_done(_: Any) -> None:
            with lock:
                left[0] -= 1
                if left[0]:
                    return
            gathered.set_result([_outcome(f) for f in futures])

        if not futures:
            gathered.set_result([])
        for future in futures:
            future.add_done_callback(one_done)
        return gathered

    def start_batch(self, items: Sequence[tuple[Task, TaskContext]], done: Done) -> None:
        """Start the actions of ``items`` as one unit of work and call ``done(pairs, error)``
        once they all ended, from any thread: ``pairs`` is what :meth:`submit_batch`'s future
        resolves to (``error`` set only when the whole batch failed). What the driver calls.

        The default wraps :meth:`submit_batch`, so an executor that overrides only
        ``submit_batch`` (or nothing) keeps working; one that can hand work over without a
        future overrides this (the local one does).
        """
        future = self.submit_batch(items)

        def finished(fut: Any) -> None:
            try:
                value, error = fut.result(), None
            except BaseException as exc:  # noqa: BLE001 - the whole batch failed
                value, error = None, exc
            done(value, error)

        future.add_done_callback(finished)

    def abandon(self) -> None:  # noqa: B027 - optional for executors
        """The driver stopped waiting (a second Ctrl-C): make :meth:`shutdown` not wait."""

    def close(self) -> None:  # noqa: B027 - optional for executors
        """Release everything (clusters, connections); called when the engine is closed."""


def run_action(plugins: Plugins, task: Task, ctx: TaskContext) -> Result:
    """The function every executor runs: the ``opus_process_task`` hook."""
    return plugins.process_task(task, ctx)


def run_batch(
    plugins: Plugins, items: Sequence[tuple[Task, TaskContext]]
) -> list[tuple[Any, BaseException | None]]:
    """Run the actions of ``items`` one after another; ``(result, error)`` for each. Each
    action is what :func:`run_action` does, with the hook looked up once for the batch."""
    act = plugins.action_runner()
    out: list[tuple[Any, BaseException | None]] = []
    append = out.append
    for task, ctx in items:
        try:
            append((act(task, ctx), None))
        except Exception as exc:  # noqa: BLE001 - reported as that task's error
            append((None, exc))
    return out


def _outcome(future: TaskFuture) -> tuple[Any, BaseException | None]:
    try:
        return future.result(), None
    except BaseException as exc:  # noqa: BLE001 - reported as that task's error
        return None, exc
