"""The executor seam: where task actions run (threads here, a Dask cluster, ...)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..model import Result, Task
    from ..plugins import Plugins
    from ..processor import TaskContext


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

    def abandon(self) -> None:  # noqa: B027 - optional for executors
        """The driver stopped waiting (a second Ctrl-C): make :meth:`shutdown` not wait."""

    def close(self) -> None:  # noqa: B027 - optional for executors
        """Release everything (clusters, connections); called when the engine is closed."""


def run_action(plugins: Plugins, task: Task, ctx: TaskContext) -> Result:
    """The function every executor runs: the ``opus_process_task`` hook."""
    return plugins.process_task(task, ctx)
