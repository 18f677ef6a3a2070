"""The document a state backend keeps for a finished run (what ``opus runs show --html``
draws later); made at the end of every run, so it needs nothing but the run itself."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..graph import TaskGraph
    from ..model import RunResult

#: Version of the document :func:`report_data` returns (kept by the state backend).
DATA_VERSION = 1


def report_data(result: RunResult, graph: TaskGraph) -> dict[str, Any]:
    """The JSON document a state backend keeps for a run's report (see
    :meth:`~opus.state.base.StateBackend.save_run_report`)."""
    tasks: dict[str, Any] = {}
    extra = [n for n in result.tasks if n not in graph.tasks]  # pruned orphans
    for name in [*graph.order, *extra]:
        outcome = result.tasks.get(name)
        if outcome is None:
            tasks[name] = {"status": "not_run"}
            continue
        entry: dict[str, Any] = {
            "status": outcome.status,
            "started_at": outcome.started_at,
            "finished_at": outcome.finished_at,
        }
        for key in ("action", "error", "drifted"):  # absent when None (readers use .get)
            value = getattr(outcome, key)
            if value is not None:
                entry[key] = value
        tasks[name] = entry
    return {
        "version": DATA_VERSION,
        "started_at": result.started_at,
        "finished_at": result.finished_at,
        "dependencies": {
            n: sorted(deps) for n in graph.order if (deps := graph.dependencies.get(n))
        },
        "tasks": tasks,
    }
