"""What a run report shows, from a finished :class:`RunResult` or from recorded state.

A :class:`RunReport` is plain data: each task's span (start and end, in seconds from the
start of the run), its worker lane, status, error and dependencies. Lanes are not recorded
by executors; they are computed by greedy interval partitioning, which uses as few lanes as
the run ever had tasks running at once (so never more than its parallelism).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..graph import TaskGraph
    from ..model import HistoryEntry, RunRecord, RunResult

#: Version of the document :func:`report_data` returns (kept by the state backend).
DATA_VERSION = 1


@dataclass(frozen=True)
class TaskSpan:
    """One task of a run as the report draws it."""

    name: str
    status: str
    action: str | None = None
    start: float | None = None  # seconds after the run started
    end: float | None = None
    error: str | None = None
    drifted: bool | None = None
    dependencies: tuple[str, ...] = ()
    lane: int | None = None

    @property
    def ran(self) -> bool:
        return self.start is not None and self.end is not None


@dataclass(frozen=True)
class RunReport:
    """A finished run: its identity, its tasks (in run order) and how long it took."""

    run_id: str
    command: str
    action: str
    context: str
    status: str
    started_at: float
    duration_s: float
    tasks: list[TaskSpan] = field(default_factory=list)

    @property
    def lanes(self) -> int:
        return 1 + max((t.lane for t in self.tasks if t.lane is not None), default=-1)

    def counts(self) -> dict[str, int]:
        """Tasks per status word (``drifted`` and ``in_sync`` for a checked drift task)."""
        out: dict[str, int] = {}
        for task in self.tasks:
            word = status_word(task)
            out[word] = out.get(word, 0) + 1
        return out


def status_word(task: TaskSpan) -> str:
    """``done``, ``failed``, ..., or ``drifted``/``in_sync`` for a checked drift task."""
    if task.status == "done" and task.action == "detect_drift" and task.drifted is not None:
        return "drifted" if task.drifted else "in_sync"
    return task.status


def assign_lanes(tasks: Iterable[TaskSpan]) -> list[TaskSpan]:
    """Give every task that ran the lowest free lane (greedy interval partitioning)."""
    spans = list(tasks)
    timed = sorted(
        (i for i, t in enumerate(spans) if t.ran),
        key=lambda i: (spans[i].start, spans[i].end, i),
    )
    busy: list[tuple[float, int]] = []  # (end, lane) of running tasks
    free: list[int] = []
    lanes = 0
    out = list(spans)
    for i in timed:
        start, end = spans[i].start or 0.0, spans[i].end or 0.0
        while busy and busy[0][0] <= start:
            heapq.heappush(free, heapq.heappop(busy)[1])
        if free:
            lane = heapq.heappop(free)
        else:
            lane, lanes = lanes, lanes + 1
        heapq.heappush(busy, (max(end, start), lane))
        out[i] = replace(spans[i], lane=lane)
    return out


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


def from_result(result: RunResult, graph: TaskGraph) -> RunReport:
    """The report of a run that just finished in this process."""
    status = "interrupted" if result.interrupted else ("ok" if result.ok else "failed")
    return _from_data(
        report_data(result, graph),
        run_id=result.run_id,
        command=result.command,
        action=result.action,
        context=result.context,
        status=status,
    )


def from_state(
    record: RunRecord, entries: Sequence[HistoryEntry], data: Mapping[str, Any] | None
) -> RunReport:
    """The report of a recorded run: the document kept at its end when there is one,
    else what its history entries say (no dependencies, only tasks that wrote state)."""
    ident = {
        "run_id": record.run_id,
        "command": record.command,
        "action": record.action,
        "context": record.context,
        "status": record.status,
    }
    if data is not None and data.get("version") == DATA_VERSION:
        return _from_data(data, **ident)
    tasks: dict[str, dict[str, Any]] = {}
    for entry in entries:
        task = tasks.setdefault(entry.name, {"started_at": None, "finished_at": None})
        began = entry.at - (entry.duration_s or 0.0)
        task["started_at"] = min(began, task["started_at"] or began)
        task["finished_at"] = max(entry.at, task["finished_at"] or entry.at)
        task.update(status=entry.status, action=entry.action)
        task["error"] = entry.error or task.get("error")
    ends = [t["finished_at"] for t in tasks.values()]
    doc = {
        "started_at": record.started_at,
        "finished_at": record.finished_at or max(ends, default=record.started_at),
        "dependencies": {},
        "tasks": tasks,
    }
    return _from_data(doc, **ident)


def _from_data(data: Mapping[str, Any], **ident: str) -> RunReport:
    began = float(data.get("started_at") or 0.0)
    deps = data.get("dependencies") or {}
    spans = []
    for name, info in (data.get("tasks") or {}).items():
        start, end = info.get("started_at"), info.get("finished_at")
        spans.append(
            TaskSpan(
                name=str(name),
                status=str(info.get("status") or "unknown"),
                action=info.get("action"),
                start=None if start is None else max(0.0, float(start) - began),
                end=None if end is None else max(0.0, float(end) - began),
                error=info.get("error"),
                drifted=info.get("drifted"),
                dependencies=tuple(str(d) for d in deps.get(name, ())),
            )
        )
    finished = float(data.get("finished_at") or began)
    return RunReport(
        started_at=began,
        duration_s=max(0.0, finished - began),
        tasks=assign_lanes(spans),
        **ident,
    )
