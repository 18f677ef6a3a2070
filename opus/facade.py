"""The seed projects' API.

``Tasks().register_task_processor(p); add_task(t); process_context(...)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .engine import Engine, as_tasks
from .model import RunResult, Task
from .processor import TaskProcessor
from .state.base import StateBackend


class Tasks:
    """A collection of tasks and processors, processed one context at a time.

    ``state`` defaults to ``memory://`` (the seeds persisted nothing unless asked);
    pass a URL or a :class:`StateBackend` (``state_persistence=`` is accepted too).
    """

    def __init__(
        self,
        state: StateBackend | str | None = None,
        *,
        state_persistence: StateBackend | None = None,
        **engine_options: Any,
    ) -> None:
        self.engine = Engine(state=state_persistence or state or "memory://", **engine_options)
        self.tasks: list[Task] = []

    def register_task_processor(self, processor: TaskProcessor | type[TaskProcessor]) -> None:
        self.engine.register_processor(processor)

    def register_hook(self, hook: object) -> None:
        self.engine.register(hook)

    def add_task(self, task: Task | Mapping[str, Any]) -> Task:
        (added,) = as_tasks([task])
        self.tasks.append(added)
        return added

    def process_context(
        self, command: str, context: str = "default", variables: Mapping[str, Any] | None = None
    ) -> RunResult:
        """Run ``command`` over every added task in ``context``."""
        return self.engine.run(command, self.tasks, context=context, variables=variables)
