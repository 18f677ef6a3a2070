"""Checks done before anything runs: every problem is collected and reported at once."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import ManifestError, OpusError, PluginError, ValidationErrors, VariableError
from .graph import TaskGraph, build_graph
from .model import Task
from .registry import ProcessorRegistry
from .variables import find_references

#: Actions whose processor method must exist for every task before a run starts.
_MUST_SUPPORT = frozenset({"create", "update", "delete", "rollback"})


def check_unique_names(tasks: Sequence[Task]) -> list[OpusError]:
    seen: dict[str, Task] = {}
    problems: list[OpusError] = []
    for task in tasks:
        first = seen.setdefault(task.name, task)
        if first is not task:
            where = f" (first defined at {first.source})" if first.source else ""
            problems.append(
                ManifestError(
                    f"duplicate task name {task.name!r}{where}",
                    file=task.source,
                    task=task.name,
                    field="metadata.name",
                )
            )
    return problems


def check_tasks(
    graph: TaskGraph,
    registry: ProcessorRegistry,
    action: str,
    variables: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
) -> list[OpusError]:
    """Problems with the tasks of ``graph``: unknown apiVersion, unsupported action,
    undefined user or environment variables."""
    env = os.environ if environ is None else environ
    problems: list[OpusError] = []
    for name, task in graph.tasks.items():
        where = f"{task.source}: " if task.source else ""
        processor = None
        try:
            processor = registry.get(task.api_version)
        except PluginError as exc:  # unknown apiVersion; still check its variables below
            problems.append(
                ManifestError(str(exc), file=task.source, task=name, field="apiVersion")
            )
        if processor is not None and action in _MUST_SUPPORT and not processor.supports(action):
            problems.append(
                ManifestError(
                    f"processor {type(processor).__name__} ({task.api_version}) does not "
                    f"support action {action!r}",
                    file=task.source,
                    task=name,
                )
            )
        timeout = task.metadata.get("timeout")
        if timeout is not None and task.timeout is None:
            problems.append(
                ManifestError(
                    f"must be a number of seconds > 0, not {timeout!r}",
                    file=task.source,
                    task=name,
                    field="metadata.timeout",
                )
            )
        try:
            references = find_references(task.spec)
        except VariableError as exc:
            problems.append(VariableError(f"{where}task {name!r}, {exc}"))
            continue
        for ref in references:
            if ref.task is not None:
                continue  # outputs are known only at run time; the graph checked the task
            if ref.source == "ENV" and ref.name not in env:
                problems.append(
                    VariableError(
                        f"{where}task {name!r}, {ref.path}: environment variable {ref.name!r} is "
                        f"not set (reference {ref.text})"
                    )
                )
            elif ref.source == "VAR" and ref.name not in variables:
                problems.append(
                    VariableError(
                        f"{where}task {name!r}, {ref.path}: variable {ref.name!r} is not defined "
                        f"(set it with variables=) (reference {ref.text})",
                        argument="variables",
                    )
                )
    return problems


def validate(
    tasks: Sequence[Task],
    command: str,
    action: str,
    context: str,
    registry: ProcessorRegistry,
    variables: Mapping[str, Any],
) -> TaskGraph:
    """Build the graph and check everything knowable before a run; raise all problems."""
    problems = check_unique_names(tasks)
    graph = build_graph(tasks, command, context, problems)
    problems += check_tasks(graph, registry, action, variables)
    if problems:
        raise _combine(problems)
    return graph


def _combine(problems: list[OpusError]) -> OpusError:
    return problems[0] if len(problems) == 1 else ValidationErrors(problems)
