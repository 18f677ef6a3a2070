"""The default executor: threads in this process."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from .base import Done, Executor, run_action, run_batch

if TYPE_CHECKING:
    from ..model import Result, Task
    from ..plugins import Plugins
    from ..processor import TaskContext

#: A unit of work: a function of the plugins, and what to call with its outcome.
_Work = tuple[Callable[["Plugins"], Any], Done]


class ThreadExecutor(Executor):
    """Runs task actions on up to ``max_workers`` threads (I/O-bound work: APIs, shells).

    The threads take work from one queue and report each outcome through a callback:
    no future, lock or condition is made per action, which is most of what a
    ``ThreadPoolExecutor`` costs for a quick action. Threads start as work arrives, up to
    ``max_workers``. They are daemon threads, so actions given up on (:meth:`abandon`)
    never keep the process alive.
    """

    name = "local"

    def __init__(self) -> None:
        self._plugins: Plugins | None = None
        self._act: Callable[[Task, TaskContext], Result] | None = None
        self._work: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._max_workers = 0
        self._idle = 0
        self._lock = threading.Lock()
        self._own_submit = True  # see start()
        self._own_batch = True

    def start(self, plugins: Plugins, max_workers: int) -> None:
        self._plugins = plugins
        self._act = None
        self._max_workers = max(1, max_workers)
        self._work = queue.SimpleQueue()
        self._threads, self._idle = [], 0
        # submit() overridden (a subclass, or an instance patched before the run, watches
        # every action): actions go through it; decided once per run, not per action
        self._own_submit = getattr(self.submit, "__func__", None) is ThreadExecutor.submit
        self._own_batch = (
            getattr(self.submit_batch, "__func__", None) is ThreadExecutor.submit_batch
        )

    # -- handing work over ------------------------------------------------------------------
    def start_action(self, task: Task, ctx: TaskContext, done: Done) -> None:
        if not self._own_submit:
            super().start_action(task, ctx, done)
            return
        act = self._act
        if act is None:  # what run_action does, with the hook looked up once per run
            assert self._plugins is not None, "start() first"
            act = self._act = self._plugins.action_runner()
        self._put((lambda plugins: act(task, ctx), done))

    def submit(self, task: Task, ctx: TaskContext) -> Future[Result]:
        return self._future(lambda plugins: run_action(plugins, task, ctx))

    def submit_batch(
        self, items: Sequence[tuple[Task, TaskContext]]
    ) -> Future[list[tuple[Any, BaseException | None]]]:
        """One thread runs the whole batch (one future, one callback, one driver wake-up)."""
        batch = list(items)
        return self._future(lambda plugins: run_batch(plugins, batch))

    def start_batch(self, items: Sequence[tuple[Task, TaskContext]], done: Done) -> None:
        """One thread runs the whole batch and reports it through ``done``: no future."""
        if not self._own_batch:  # submit_batch overridden: the batch goes through it
            super().start_batch(items, done)
            return
        batch = list(items)
        self._put((lambda plugins: run_batch(plugins, batch), done))

    def _future(self, work: Callable[[Plugins], Any]) -> Future[Any]:
        future: Future[Any] = Future()

        def done(value: Any, error: BaseException | None) -> None:
            if error is None:
                future.set_result(value)
            else:
                future.set_exception(error)

        self._put((work, done))
        return future

    def _put(self, item: _Work) -> None:
        assert self._plugins is not None, "start() first"
        with self._lock:
            if self._idle:
                self._idle -= 1
            elif len(self._threads) < self._max_workers:
                thread = threading.Thread(
                    target=self._serve, name=f"opus-task-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
            # else: every thread is busy; the first to finish takes it
        self._work.put(item)

    def _serve(self) -> None:
        plugins, work = self._plugins, self._work
        assert plugins is not None
        while True:
            item = work.get()
            if item is None:
                return
            function, done = item
            try:
                value, error = function(plugins), None
            except BaseException as exc:  # noqa: BLE001 - the action's error, reported
                value, error = None, exc
            del function, item  # hold nothing of a finished action while idle
            with self._lock:
                self._idle += 1
            done(value, error)
            del done

    # -- the end ----------------------------------------------------------------------------
    def _stop_threads(self) -> list[threading.Thread]:
        threads, self._threads = self._threads, []
        for _ in threads:
            self._work.put(None)
        return threads

    def abandon(self) -> None:
        """Stop taking work and do not wait: the threads are daemons."""
        self._stop_threads()

    def shutdown(self) -> None:
        for thread in self._stop_threads():
            thread.join()
