"""Builtin plugin: ``${VAR:...}`` / ``${ENV:...}`` resolution of task specs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..hookspecs import hookimpl
from ..variables import resolve_spec

if TYPE_CHECKING:
    from ..model import Task
    from ..variables import Renderer


@hookimpl(trylast=True)
def opus_resolve_spec(
    task: Task,
    spec: Mapping[str, Any],
    variables: Mapping[str, Any],
    command: str,
    context: str,
    render: Renderer | None,
) -> dict[str, Any]:
    return resolve_spec(spec, variables, task_name=task.name, render=render)
