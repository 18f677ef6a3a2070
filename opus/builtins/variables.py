"""Builtin plugin: the ``${VAR:...}`` resolver and the ``${ENV:...}`` variable source."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..hookspecs import hookimpl
from ..variables import env_source, resolve_spec

if TYPE_CHECKING:
    from ..model import Task
    from ..variables import Renderer


@hookimpl(trylast=True)
def opus_variable_sources() -> dict[str, Callable[[str], Any]]:
    return {"ENV": env_source()}


@hookimpl(trylast=True)
def opus_resolve_spec(
    task: Task,
    spec: Mapping[str, Any],
    variables: Mapping[str, Any],
    sources: Mapping[str, Callable[[str], Any]],
    render: Renderer | None,
) -> dict[str, Any]:
    return resolve_spec(spec, variables, task_name=task.name, sources=sources, render=render)
