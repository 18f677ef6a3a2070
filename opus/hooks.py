"""Seed-style hooks: :class:`Hook` and the builtin dispatcher :class:`TaskProcessingHook`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .hookspecs import hookimpl

if TYPE_CHECKING:
    from .model import Result, Task
    from .processor import TaskContext
    from .registry import ProcessorRegistry


class Hook:
    """Base class for hooks that run on every task, registered as a plugin instance.

    Subclass it and implement any ``opus_*`` hook as a method decorated with
    ``@opus.hookimpl`` (``opus_task_start``, ``opus_task_done``, ``opus_process_task`` as
    a wrapper, ...); then ``engine.register(MyHook())`` or ``Tasks().register_hook(...)``.
    """

    #: The plugin name; defaults to the class name.
    name: str | None = None

    @property
    def plugin_name(self) -> str:
        return self.name or type(self).__name__

    def __repr__(self) -> str:
        return f"<{type(self).__name__} hook>"


class TaskProcessingHook(Hook):
    """The builtin ``opus_process_task``: dispatches to the processor of the apiVersion."""

    name = "builtin-dispatch"

    def __init__(self, registry: ProcessorRegistry) -> None:
        self.registry = registry

    @hookimpl(trylast=True)
    def opus_process_task(self, task: Task, ctx: TaskContext) -> Result:
        return self.registry.get(task.api_version).run_action(ctx.action, task, ctx)
