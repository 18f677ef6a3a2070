"""The ready-queue: which task may start now, given dependencies and concurrency limits."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping, Sequence

#: What ``limits_of`` gives: (limit key, limit) pairs.
Limits = Sequence[tuple[str, int]]


class Scheduler:
    """Tracks one run's tasks through pending → ready → running → finished.

    ``dependencies[name]`` are the tasks ``name`` waits for (already reversed for
    ``delete``). A task becomes ready when all of them succeeded; when one fails, every
    task downstream of it is *blocked* and will be skipped. ``limits_of(name)`` gives the
    limit keys a task counts against (processor, group), each with its limit (``None``: no
    task has one); the global ``parallelism`` caps everything.
    """

    def __init__(
        self,
        order: list[str],
        dependencies: Mapping[str, Iterable[str]],
        parallelism: int,
        limits_of: Callable[[str], Limits] | None = None,
    ) -> None:
        self.parallelism = max(1, parallelism)
        self._limits_of = limits_of
        self._index = {name: i for i, name in enumerate(order)}
        self._order = order
        #: tasks still waiting for dependencies -> how many (a task absent waits for none)
        self._waiting: dict[str, int] = {}
        #: task -> the tasks that depend on it (absent: none)
        self._dependents: dict[str, list[str]] = {}
        for name in order:
            deps = [d for d in dependencies.get(name, ()) if d in self._index]
            if deps:
                self._waiting[name] = len(deps)
            for dep in deps:
                self._dependents.setdefault(dep, []).append(name)
        self._ready = [self._index[n] for n in order if n not in self._waiting]
        heapq.heapify(self._ready)
        self._in_use: dict[str, int] = {}
        self.running: set[str] = set()
        self.finished: set[str] = set()
        self.blocked: dict[str, str] = {}  # name -> the failed task that blocked it

    def _fits(self, name: str) -> bool:
        if self._limits_of is None:
            return True
        return all(self._in_use.get(key, 0) < limit for key, limit in self._limits_of(name))

    def next_task(self) -> str | None:
        """The next task allowed to start now (marked running), or ``None``."""
        if len(self.running) >= self.parallelism:
            return None
        held: list[int] = []
        chosen = None
        while self._ready:
            index = heapq.heappop(self._ready)
            name = self._order[index]
            if self._fits(name):
                chosen = name
                break
            held.append(index)
        for index in held:
            heapq.heappush(self._ready, index)
        if chosen is not None:
            self.running.add(chosen)
            for key, _ in self._limits_of(chosen) if self._limits_of else ():
                self._in_use[key] = self._in_use.get(key, 0) + 1
        return chosen

    def finish(self, name: str, succeeded: bool) -> list[str]:
        """Record that ``name`` finished; returns the tasks newly blocked by its failure."""
        self.running.discard(name)
        self.finished.add(name)
        for key, _ in self._limits_of(name) if self._limits_of else ():
            self._in_use[key] -= 1
        if succeeded:
            for dependent in self._dependents.get(name, ()):
                left = self._waiting[dependent] - 1
                if left:
                    self._waiting[dependent] = left
                    continue
                del self._waiting[dependent]
                if dependent not in self.blocked:
                    heapq.heappush(self._ready, self._index[dependent])
            return []
        newly: list[str] = []
        stack = list(self._dependents.get(name, ()))
        while stack:
            dependent = stack.pop()
            if dependent in self.blocked or dependent in self.finished:
                continue
            self.blocked[dependent] = name
            newly.append(dependent)
            stack.extend(self._dependents.get(dependent, ()))
        return sorted(newly, key=self._index.__getitem__)

    def abandon(self, name: str) -> None:
        """Stop tracking a running task whose result will never be known."""
        self.running.discard(name)

    def not_started(self) -> list[str]:
        """Tasks neither started nor blocked, in order."""
        return [
            n
            for n in self._order
            if n not in self.finished and n not in self.running and n not in self.blocked
        ]

    @property
    def done(self) -> bool:
        return not self.running and not self._ready
