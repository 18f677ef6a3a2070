"""Helpers for testing processors without running the engine (for plugin authors).

>>> from opus.testing import task_context
>>> ctx = task_context(task, "create")
>>> result = MyProcessor().create(task, ctx)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..model import Task, TaskState
from ..processor import ReadOnlyVariables, TaskContext


def task_context(
    task: Task,
    action: str,
    *,
    state: TaskState | None = None,
    spec: Mapping[str, Any] | None = None,
    command: str = "apply",
    context: str = "test",
    run_id: str = "test-run",
    variables: Mapping[str, Any] | None = None,
    **extra: Any,
) -> TaskContext:
    """A :class:`TaskContext` like the engine would build for ``action`` on ``task``.

    ``spec`` defaults to ``task.spec`` (give the resolved spec when the task has
    references); ``extra`` sets other fields such as ``failed_action`` and ``error``.
    """
    return TaskContext(
        task_name=task.name,
        spec=dict(task.spec if spec is None else spec),
        command=command,
        context=context,
        action=action,
        run_id=run_id,
        state=state,
        variables=ReadOnlyVariables(variables),
        **extra,
    )
