"""How outcomes are named in text output: ``created``, ``~ update``, ``unknown``..."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..model import RunResult, Task, TaskOutcome
    from ..plugins import Plugins

_VERB = {
    "create": "created",
    "update": "updated",
    "replace": "replaced",
    "delete": "deleted",
    "describe": "described",
    "detect_drift": "checked",
    "rollback": "rolled back",
}
_PLAN = {"create": "+ create", "update": "~ update", "replace": "-/+ replace", "delete": "- delete"}
_ORDER = [
    "to create",
    "to update",
    "to replace",
    "to delete",
    "created",
    "updated",
    "replaced",
    "deleted",
    "described",
    "drifted",
    "in sync",
    "unknown",
    "unchanged",
    "rolled back",
    "failed",
    "skipped",
]

#: Says why a processor cannot answer for a task's outcome (``None`` when it can).
GapFinder = Callable[["Task", "TaskOutcome"], "str | None"]


def capability_gaps(plugins: Plugins) -> GapFinder:
    """A :data:`GapFinder` for the processors of ``plugins``.

    A planned change the processor does not implement would fail in ``apply`` (shown as
    ``unknown``); a ``describe`` the processor does not implement only shows what state
    recorded (still ``described``, with the gap as a note).
    """

    def gap(task: Task, outcome: TaskOutcome) -> str | None:
        action = outcome.action
        if outcome.status not in ("planned", "done") or action not in (
            "create",
            "update",
            "delete",
            "describe",
        ):
            return None
        if outcome.status == "done" and action != "describe":
            return None
        try:
            processor = plugins.processors().get(task.api_version)
        except Exception:  # unknown apiVersion: validation reports it
            return None
        if processor.supports(action):
            return None
        text = f"{type(processor).__name__} ({task.api_version}) does not implement {action}"
        return text + "; from state only" if action == "describe" else text

    return gap


def outcome_word(outcome: TaskOutcome, gap: str | None = None) -> str:
    """``created``, ``unchanged``, ``failed``..., ``+ create`` for plan, ``unknown`` when the
    processor cannot answer."""
    if gap is not None and outcome.status == "planned":
        return "unknown"
    if outcome.status == "planned":
        return _PLAN.get(outcome.action or "", outcome.action or "?")
    if outcome.status == "done":
        if outcome.action == "detect_drift":
            return {True: "drifted", False: "in sync", None: "unknown"}[outcome.drifted]
        return _VERB.get(outcome.action or "", "done")
    return outcome.status.replace("_", " ")


def count_line(result: RunResult, gaps: Mapping[str, str] | None = None) -> str:
    """``3 created, 1 updated, 5 unchanged, 1 failed, 2 skipped in 1.24 s``."""
    gaps = gaps or {}
    counts: dict[str, int] = {}
    for name, outcome in result.tasks.items():
        word = outcome_word(outcome, gaps.get(name)).lstrip("+~- ")
        if outcome.status == "planned" and word != "unknown":
            word = f"to {word}"
        counts[word] = counts.get(word, 0) + 1
    parts = [f"{counts.pop(w)} {w}" for w in _ORDER if w in counts]
    parts += [f"{n} {w}" for w, n in sorted(counts.items())]
    text = ", ".join(parts) or "no tasks"
    if result.interrupted:
        text += " (interrupted)"
    return f"{text} in {result.duration_s:.2f} s"


def error_excerpt(error: str | None, width: int = 120) -> str:
    """The first line of an error, cut to ``width`` characters."""
    if not error:
        return ""
    line = error.strip().splitlines()[0] if error.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"
