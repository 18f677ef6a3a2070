"""The default executor: a thread pool in this process."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from .base import Executor, run_action, run_batch

if TYPE_CHECKING:
    from ..model import Result, Task
    from ..plugins import Plugins
    from ..processor import TaskContext


class ThreadExecutor(Executor):
    """Runs task actions on up to ``max_workers`` threads (I/O-bound work: APIs, shells)."""

    name = "local"

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._plugins: Plugins | None = None

    def start(self, plugins: Plugins, max_workers: int) -> None:
        self._plugins = plugins
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="opus-task")

    def submit(self, task: Task, ctx: TaskContext) -> Future[Result]:
        assert self._pool is not None and self._plugins is not None, "start() first"
        return self._pool.submit(run_action, self._plugins, task, ctx)

    def submit_batch(
        self, items: Sequence[tuple[Task, TaskContext]]
    ) -> Future[list[tuple[Any, BaseException | None]]]:
        """One thread runs the whole batch (one future, one callback, one driver wake-up)."""
        assert self._pool is not None and self._plugins is not None, "start() first"
        return self._pool.submit(run_batch, self._plugins, list(items))

    def abandon(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
