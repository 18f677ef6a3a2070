"""Checks done before anything runs: every problem is collected and reported at once."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from .commands import ACTIONS
from .errors import (
    ManifestError,
    OpusError,
    PluginError,
    SpecError,
    ValidationErrors,
    VariableError,
)
from .graph import TaskGraph, build_graph
from .manifest_schema import metadata_schema, timeout_problem
from .model import Task
from .names import NAME_PATTERN, name_problem
from .registry import ProcessorRegistry
from .specschema import CompiledSchema, compile_schema
from .yamlsafe import document_nodes, node_line, task_node

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


class _Lines:
    """Finds the line of a spec or metadata path in the task's file (only when there is a
    problem to report; each file is read and composed once per check)."""

    def __init__(self) -> None:
        self._files: dict[str, dict[int, Any]] = {}

    def where(self, task: Task, path: str) -> str | None:
        file, _, line = (task.source or "").rpartition(":")
        if not file or not line.isdigit():
            return task.source
        if file not in self._files:
            try:
                text = Path(file).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                text = ""
            self._files[file] = document_nodes(text) if text else {}
        document = self._files[file].get(int(line))
        node = task_node(document, task.name) if document is not None else None
        if node is None:
            return task.source
        return f"{file}:{node_line(node, path)}"


_metadata_schemas: dict[tuple[str, ...], CompiledSchema] = {}


def _compiled_metadata_schema(commands: Iterable[str]) -> CompiledSchema:
    key = tuple(sorted(set(commands)))
    compiled = _metadata_schemas.get(key)
    if compiled is None:
        compiled = compile_schema(metadata_schema(key), "metadata schema")
        _metadata_schemas.clear()
        _metadata_schemas[key] = compiled
    return compiled


#: A whole valid name (``fullmatch``: no final newline, unlike the pattern's ``$``).
_NAME = re.compile(NAME_PATTERN.removeprefix("^").removesuffix("$")).fullmatch


def _valid_name(name: object) -> bool:
    """A string :func:`name_problem` accepts also matches the schema's name pattern (it
    excludes a final newline, which a ``$`` in a pattern would let through)."""
    if type(name) is not str:
        return False
    if name.isalnum() and name.isascii() and len(name) <= 253:
        return True  # letters and digits only (the usual names), without the pattern
    return _NAME(name) is not None


def _strings(value: object) -> bool:
    if type(value) is not list:
        return False
    for item in value:
        if type(item) is not str:
            return False
    return True


def _string_map(value: object) -> bool:
    if type(value) is not dict:
        return False
    for key, item in value.items():
        if type(key) is not str or type(item) is not str:
            return False
    return True


_DEPENDENCY_KEYS = frozenset({"tasks", "labels", "contexts"})


def _plain_dependency(entry: object) -> bool:
    if type(entry) is str:
        return True
    if type(entry) is not dict or not _DEPENDENCY_KEYS.issuperset(entry):
        return False  # ("commands" lists are checked against the command map by the schema)
    if "tasks" in entry:
        if not _strings(entry["tasks"]):
            return False
    elif "labels" not in entry:
        return False  # needs 'tasks' or 'labels'
    if "labels" in entry:
        labels = entry["labels"]
        if not (_string_map(labels) and labels):
            return False
    return "contexts" not in entry or _strings(entry["contexts"])


def _plain_dependencies(value: object) -> bool:
    if type(value) is not list:
        return False
    for entry in value:
        if not _plain_dependency(entry):
            return False
    return True


#: What the shortcut checks for each metadata key it knows besides ``name``: the metadata
#: schema's rule.
_PLAIN_METADATA: dict[str, Callable[[Any], bool]] = {
    "labels": _string_map,
    "annotations": _string_map,
    "description": lambda value: type(value) is str,
    "dependencies": _plain_dependencies,
    "autoRollback": lambda value: type(value) is bool,
    "concurrencyGroup": lambda value: type(value) is str and value != "",
    "timeout": lambda value: type(value) in (int, float) and timeout_problem(value) is None,
}


def _plain_metadata(metadata: Mapping[str, Any]) -> bool:
    """Whether ``metadata`` certainly passes the metadata schema: its usual keys, each of
    a plain valid form. ``False`` says nothing (the schema decides): it is only a shortcut."""
    if type(metadata) is not dict or not _valid_name(metadata.get("name")):
        return False
    for key, value in metadata.items():
        if key != "name":
            check = _PLAIN_METADATA.get(key)
            if check is None or not check(value):
                return False
    return True


def check_metadata(
    tasks: Sequence[Task], commands: Iterable[str] = ()
) -> tuple[list[Task], list[OpusError]]:
    """Check every task's name and ``metadata`` (keys, types, names in ``commands:`` lists).

    Returns the tasks with the keys that failed removed from their metadata (so the graph
    can still be built to report its own problems) and one error per problem.
    """
    schema: CompiledSchema | None = None  # compiled for the first task that needs it
    lines = _Lines()
    checked: list[Task] = []
    problems: list[OpusError] = []
    for task in tasks:
        metadata = task.metadata
        if _plain_metadata(metadata):
            checked.append(task)  # what the schema would say, cheaper
            continue
        if schema is None:
            schema = _compiled_metadata_schema([*commands, *ACTIONS] if commands else ())
        found = schema.problems(metadata if type(metadata) is dict else dict(metadata), "metadata")
        if "name" not in task.metadata:  # a derived name (Python API): check it too
            problem = name_problem(task.name)
            if problem:
                found.append(("metadata.name", f"derived name {task.name!r} {problem}"))
        elif all(path != "metadata.name" for path, _ in found):
            problem = name_problem(task.metadata["name"])  # the schema's `$` lets "a\n" by
            if problem:
                found.append(("metadata.name", problem))
        timeout = metadata.get("timeout")
        bad_timeout = None if timeout is None else timeout_problem(timeout)
        if bad_timeout and all(path != "metadata.timeout" for path, _ in found):
            found.append(("metadata.timeout", f"{bad_timeout}, not {timeout!r}"))  # NaN
        bad_keys: set[str] = set()
        for path, message in found:
            if path == "metadata.name" and "name" in task.metadata:
                message = f"invalid task name {task.metadata['name']!r}: " + (
                    name_problem(task.metadata["name"]) or message
                )
            where = lines.where(task, path)
            problems.append(SpecError(message, file=where, task=task.name, path=path))
            key = path.removeprefix("metadata").lstrip(".").split(".")[0].split("[")[0]
            bad_keys.add(key)
        if bad_keys - {"name"}:
            metadata = {k: v for k, v in task.metadata.items() if k not in bad_keys}
            task = replace(task, metadata=metadata)
        checked.append(task)
    return checked, problems


def check_specs(tasks: Iterable[Task], registry: ProcessorRegistry) -> list[OpusError]:
    """Check every task's raw spec against its processor's ``spec_schema`` (compiled once
    per processor here); tasks with an unknown apiVersion are left to :func:`check_tasks`."""
    compiled: dict[str, CompiledSchema | None] = {}
    lines = _Lines()
    problems: list[OpusError] = []
    for task in tasks:
        if task.api_version not in compiled:
            try:
                processor = registry.get(task.api_version)
            except PluginError:
                compiled[task.api_version] = None
                continue
            schema = getattr(processor, "spec_schema", None)
            compiled[task.api_version] = (
                None
                if schema is None
                else compile_schema(schema, f"spec_schema of {task.api_version}")
            )
        schema = compiled[task.api_version]
        if schema is None:
            continue
        for path, message in schema.problems(task.spec):
            where = lines.where(task, path)
            problems.append(SpecError(message, file=where, task=task.name, path=path))
    return problems


def check_tasks(
    graph: TaskGraph,
    registry: ProcessorRegistry,
    action: str,
    variables: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
    prefixes: Collection[str] | None = None,
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
        problem = None if timeout is None else timeout_problem(timeout)
        if problem:
            problems.append(
                ManifestError(
                    f"{problem}, not {timeout!r}",
                    file=task.source,
                    task=name,
                    field="metadata.timeout",
                )
            )
        try:
            references = task.references(prefixes)
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
                        variable=ref.name,
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
    prefixes: Collection[str] | None = None,
    commands: Iterable[str] = (),
) -> TaskGraph:
    """Build the graph and check everything knowable before a run; raise all problems.

    ``prefixes`` are the known ``${PREFIX:...}`` (``Plugins.variable_prefixes()``);
    ``commands`` the command names allowed in ``commands:`` lists of metadata (with the
    actions); none given: any name.
    """
    tasks, problems = check_metadata(tasks, commands)
    duplicates = check_unique_names(tasks)
    problems += duplicates
    graph = build_graph(tasks, command, context, problems, prefixes)
    checked: Iterable[Task] = graph.tasks.values()
    if duplicates:  # every definition's spec is checked: fixing the name then shows nothing new
        kept = graph.tasks
        checked = [*(t for t in tasks if t.name in kept and kept[t.name] is not t), *checked]
    problems += check_specs(checked, registry)
    problems += check_tasks(graph, registry, action, variables, prefixes=prefixes)
    if problems:
        raise _combine(problems)
    return graph


def _combine(problems: list[OpusError]) -> OpusError:
    # the graph and the task checks may find the same problem (a malformed reference)
    unique = list({(type(p), str(p)): p for p in problems}.values())
    return unique[0] if len(unique) == 1 else ValidationErrors(unique)
