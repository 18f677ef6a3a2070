"""The dependency graph of a run: scopes, explicit, label and implicit dependencies, order."""

from __future__ import annotations

import graphlib
import heapq
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from .errors import (
    CycleError,
    GraphError,
    ManifestError,
    OpusError,
    ValidationErrors,
    VariableError,
)
from .model import Task


def _listed(entry: Mapping[str, Any], key: str, value: str) -> bool:
    """Whether ``value`` is allowed by ``entry[key]`` (a missing key allows everything)."""
    allowed = entry.get(key)
    return allowed is None or value in allowed


def _check_list(task: Task, field_path: str, value: Any) -> None:
    if value is not None and (
        not isinstance(value, list) or not all(isinstance(v, str) for v in value)
    ):
        raise ManifestError(
            "must be a list of strings", file=task.source, task=task.name, field=field_path
        )


def in_scope(task: Task, command: str, context: str) -> bool:
    """Whether ``task`` is processed for ``command`` in ``context`` (``processingScopes``)."""
    scopes = task.metadata.get("processingScopes")
    if not scopes:
        return True
    if not isinstance(scopes, list) or not all(isinstance(s, Mapping) for s in scopes):
        raise ManifestError(
            "must be a list of {commands: [...], contexts: [...]} mappings",
            file=task.source,
            task=task.name,
            field="metadata.processingScopes",
        )
    for i, scope in enumerate(scopes):
        for key in ("commands", "contexts"):
            _check_list(task, f"metadata.processingScopes[{i}].{key}", scope.get(key))
    return any(_listed(s, "commands", command) and _listed(s, "contexts", context) for s in scopes)


class TaskGraph:
    """The tasks of one run and who depends on whom.

    ``order`` is a stable topological order (dependencies first, ties in input order);
    ``dependencies[name]`` are the tasks ``name`` depends on in this run.
    """

    __slots__ = ("tasks", "dependencies", "order", "out_of_scope")
    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def __init__(
        self,
        tasks: dict[str, Task],
        dependencies: dict[str, set[str]],
        order: list[str] | None = None,
        out_of_scope: list[str] | None = None,
    ) -> None:
        self.tasks = tasks
        self.dependencies = dependencies
        self.order: list[str] = [] if order is None else order
        self.out_of_scope: list[str] = [] if out_of_scope is None else out_of_scope

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TaskGraph):
            return NotImplemented
        return (self.tasks, self.dependencies, self.order, self.out_of_scope) == (
            other.tasks, other.dependencies, other.order, other.out_of_scope
        )  # fmt: skip

    def __repr__(self) -> str:
        return f"TaskGraph({len(self.tasks)} tasks, order={self.order!r})"

    @property
    def dependents(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {name: set() for name in self.tasks}
        for name, deps in self.dependencies.items():
            for dep in deps:
                out[dep].add(name)
        return out

    def subset(self, names: Iterable[str]) -> TaskGraph:
        """The graph restricted to ``names`` (keeping their order)."""
        keep = set(names)
        return TaskGraph(
            tasks={n: t for n, t in self.tasks.items() if n in keep},
            dependencies={n: d & keep for n, d in self.dependencies.items() if n in keep},
            order=[n for n in self.order if n in keep],
            out_of_scope=self.out_of_scope,
        )

    def closure(self, start: Iterable[str], edges: Mapping[str, set[str]]) -> set[str]:
        """``start`` and everything reachable from it along ``edges``."""
        seen: set[str] = set()
        stack = [n for n in start]
        while stack:
            name = stack.pop()
            if name not in seen:
                seen.add(name)
                stack.extend(edges.get(name, ()))
        return seen

    def select(
        self, targets: Sequence[str] = (), excludes: Sequence[str] = (), *, teardown: bool = False
    ) -> TaskGraph:
        """Keep ``targets`` and what they depend on, minus ``excludes`` and what depends on them.

        With ``teardown`` (a delete) the closures turn round, as deleting goes the other way:
        ``targets`` and what depends on them (which would be left pointing at nothing), minus
        ``excludes`` and what they depend on (which they still need).
        """
        for argument, names in (("targets", targets), ("excludes", excludes)):
            for name in names:
                if name not in self.tasks:
                    raise GraphError(
                        f"{argument}=: no task named {name!r} in this run", argument=argument
                    )
        if not targets and not excludes:
            return self  # everything: the graph as it is (no copy per task)
        needs, needed_by = self.dependencies, self.dependents
        if teardown:
            needs, needed_by = needed_by, needs
        keep = set(self.tasks)
        if targets:
            keep = self.closure(targets, needs)
        if excludes:
            keep -= self.closure(excludes, needed_by)
        return self.subset(keep)


def _explicit_dependencies(
    task: Task, command: str, context: str, by_label: Mapping[tuple[str, str], set[str]]
) -> Iterable[tuple[str, str]]:
    """Yield ``(dependency name, how it was named)`` for ``metadata.dependencies``."""
    entries = task.metadata.get("dependencies") or []
    if not isinstance(entries, list):
        raise ManifestError(
            "must be a list of {tasks: [...]} / {labels: {...}} entries",
            file=task.source,
            task=task.name,
            field="metadata.dependencies",
        )
    for i, entry in enumerate(entries):
        where = f"metadata.dependencies[{i}]"
        if isinstance(entry, str):  # shorthand: a bare task name
            yield entry, where
            continue
        if not isinstance(entry, Mapping):
            raise ManifestError(
                "must be a mapping with 'tasks' or 'labels'",
                file=task.source,
                task=task.name,
                field=where,
            )
        for key in ("tasks", "commands", "contexts"):
            _check_list(task, f"{where}.{key}", entry.get(key))
        if "tasks" not in entry and "labels" not in entry:
            raise ManifestError(
                "needs 'tasks' or 'labels'", file=task.source, task=task.name, field=where
            )
        if not (_listed(entry, "commands", command) and _listed(entry, "contexts", context)):
            continue
        yield from ((name, f"{where}.tasks") for name in entry.get("tasks") or [])
        labels = entry.get("labels")
        if labels is not None:
            if not isinstance(labels, Mapping) or not labels:
                raise ManifestError(
                    "must be a non-empty mapping of label: value",
                    file=task.source,
                    task=task.name,
                    field=f"{where}.labels",
                )
            sets = [by_label.get((str(k), str(v)), set()) for k, v in labels.items()]
            for name in set.intersection(*sets) - {task.name}:
                yield name, f"{where}.labels"


def build_graph(
    tasks: Sequence[Task],
    command: str,
    context: str,
    problems: list[OpusError] | None = None,
    prefixes: Collection[str] | None = None,
) -> TaskGraph:
    """Build the graph of ``tasks`` for ``command`` in ``context``.

    ``prefixes`` are the known ``${PREFIX:...}`` (``Plugins.variable_prefixes()``).

    Collects every problem (unknown or out-of-scope dependency, malformed fields, a cycle
    naming every task on it) and raises them together as :class:`ValidationErrors` — or,
    when a ``problems`` list is given, appends to it and returns what could be built.
    """
    collect = problems is not None
    problems = [] if problems is None else problems
    all_names = {t.name for t in tasks}
    selected: dict[str, Task] = {}
    out_of_scope: list[str] = []
    for task in tasks:
        try:
            (
                selected.__setitem__(task.name, task)
                if in_scope(task, command, context)
                else out_of_scope.append(task.name)
            )
        except OpusError as exc:
            problems.append(exc)

    by_label: dict[tuple[str, str], set[str]] = defaultdict(set)
    for name, task in selected.items():
        for key, value in task.labels.items():
            by_label[(str(key), str(value))].add(name)

    dependencies: dict[str, set[str]] = {name: set() for name in selected}
    for name, task in selected.items():
        try:
            named: list[tuple[str, Any]] = (
                list(_explicit_dependencies(task, command, context, by_label))
                if task.metadata.get("dependencies")
                else []
            )
            named += [(r.task, r) for r in task.references(prefixes) if r.task]
        except VariableError as exc:  # a malformed reference: said with its file and task
            where = f"{task.source}: " if task.source else ""
            problems.append(VariableError(f"{where}task {name!r}, {exc}"))
            continue
        except OpusError as exc:
            problems.append(exc)
            continue
        needs = dependencies[name]
        for dep, where in named:
            if dep in selected and dep != name:
                needs.add(dep)
                continue
            if not isinstance(where, str):  # a reference: said only when there is a problem
                where = f"{where.path} ({where.text})"
            if dep == name:
                problems.append(CycleError([name, name]))
            elif dep in all_names:
                problems.append(
                    GraphError(
                        f"task {name!r} depends on task {dep!r} ({where}), which is out of "
                        f"scope for command {command!r} in context {context!r}"
                    )
                )
            else:
                problems.append(
                    GraphError(f"task {name!r} depends on unknown task {dep!r} ({where})")
                )
    graph = TaskGraph(tasks=selected, dependencies=dependencies, out_of_scope=out_of_scope)
    try:
        graph.order = topological_order(list(selected), dependencies)
    except CycleError as exc:
        problems.append(exc)
    if problems and not collect:
        raise problems[0] if len(problems) == 1 else ValidationErrors(problems)
    return graph


def topological_order(names: list[str], dependencies: Mapping[str, set[str]]) -> list[str]:
    """Dependencies first; among tasks ready at once, the one listed first goes first."""
    index = {name: i for i, name in enumerate(names)}
    waiting = {name: len(dependencies[name]) for name in names}
    dependents: dict[str, list[str]] = defaultdict(list)
    for name in names:
        for dep in dependencies[name]:
            dependents[dep].append(name)
    ready = [index[n] for n in names if waiting[n] == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        name = names[heapq.heappop(ready)]
        order.append(name)
        for dependent in dependents[name]:
            waiting[dependent] -= 1
            if waiting[dependent] == 0:
                heapq.heappush(ready, index[dependent])
    if len(order) < len(names):
        try:
            graphlib.TopologicalSorter({n: dependencies[n] for n in names if waiting[n]}).prepare()
        except graphlib.CycleError as exc:
            cycle = list(reversed(exc.args[1]))
            raise CycleError(cycle) from None
        raise CycleError(sorted(n for n in names if waiting[n]))  # pragma: no cover
    return order
