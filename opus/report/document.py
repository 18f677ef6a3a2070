"""The document a state backend keeps for a finished run (what ``opus runs show --html``
draws later); made at the end of every run, so it needs nothing but the run itself."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..graph import TaskGraph
    from ..model import RunResult

#: Version of the document :func:`report_data` returns (kept by the state backend).
DATA_VERSION = 1


def report_data(result: RunResult, graph: TaskGraph) -> dict[str, Any]:
    """The JSON document a state backend keeps for a run's report (see
    :meth:`~opus.state.base.StateBackend.save_run_report`)."""
    document = _document(result, graph)
    document["dependencies"] = dict(document["dependencies"])
    document["tasks"] = dict(document["tasks"])
    return document


def report_json(result: RunResult, graph: TaskGraph) -> str:
    """The JSON text of :func:`report_data`, written without the document: each task's
    entry is made when its slice of the text is encoded, so a run of many tasks never
    holds an entry per task (see :meth:`~opus.state.base.StateBackend.save_run_report_text`)."""
    from ..state.jsontext import dump_large_json

    return dump_large_json(_document(result, graph))


def _document(result: RunResult, graph: TaskGraph) -> dict[str, Any]:
    extra = [n for n in result.tasks if n not in graph.tasks]  # pruned orphans
    outcomes, dependencies = result.tasks, graph.dependencies

    def entry(name: str) -> dict[str, Any]:
        outcome = outcomes.get(name)
        if outcome is None:
            if name not in graph.tasks:
                raise KeyError(name)
            return {"status": "not_run"}
        made: dict[str, Any] = {
            "status": outcome.status,
            "started_at": outcome.started_at,
            "finished_at": outcome.finished_at,
        }
        for key in ("action", "error", "drifted"):  # absent when None (readers use .get)
            value = getattr(outcome, key)
            if value is not None:
                made[key] = value
        return made

    def needs(name: str) -> list[str]:
        deps = dependencies.get(name)
        if not deps:
            raise KeyError(name)
        return sorted(deps)

    return {
        "version": DATA_VERSION,
        "started_at": result.started_at,
        "finished_at": result.finished_at,
        "dependencies": _Entries([n for n in graph.order if dependencies.get(n)], needs),
        "tasks": _Entries([*graph.order, *extra], entry),
    }


class _Entries(Mapping[str, Any]):
    """A mapping of task names to values made each time they are read."""

    def __init__(self, names: list[str], make: Callable[[str], Any]) -> None:
        self._names, self._make = names, make

    def __getitem__(self, name: str) -> Any:
        return self._make(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)
