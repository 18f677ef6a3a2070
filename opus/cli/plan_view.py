"""Terraform-style plan output."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any

import click

from .words import count_line

if TYPE_CHECKING:
    from ..model import RunResult, TaskOutcome

_SIGN = {"create": "+", "update": "~", "replace": "-/+", "delete": "-"}


def _value(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


def diff_lines(diff: Mapping[str, Any] | None, indent: str = "      ") -> list[str]:
    """``+ path = value``, ``- path = value``, ``~ path: old -> new``, sorted by path."""
    diff = diff or {}
    lines = []
    for path, value in (diff.get("added") or {}).items():
        lines.append((path, f"{indent}+ {path} = {_value(value)}"))
    for path, value in (diff.get("removed") or {}).items():
        lines.append((path, f"{indent}- {path} = {_value(value)}"))
    for path, (old, new) in (diff.get("changed") or {}).items():
        lines.append((path, f"{indent}~ {path}: {_value(old)} -> {_value(new)}"))
    return [line for _, line in sorted(lines)]


def plan_counts(result: RunResult, gaps: Mapping[str, str]) -> dict[str, int]:
    counts = {"create": 0, "update": 0, "replace": 0, "delete": 0, "unknown": 0}
    for name, outcome in result.tasks.items():
        if outcome.status != "planned":
            continue
        key = "unknown" if name in gaps else outcome.action or "unknown"
        counts[key] = counts.get(key, 0) + 1
    return counts


def plan_total(result: RunResult, gaps: Mapping[str, str]) -> str:
    """``Plan: 1 to create, 2 to update, 0 to delete.`` (plus ``, N unknown`` if any)."""
    counts = plan_counts(result, gaps)
    if not any(counts.values()):
        return "No changes. Everything is up to date."
    text = f"Plan: {counts['create']} to create, {counts['update']} to update, "
    if counts["replace"]:
        text += f"{counts['replace']} to replace, "
    text += f"{counts['delete']} to delete"
    if counts["unknown"]:
        text += f", {counts['unknown']} unknown"
    return text + "."


def print_plan(
    result: RunResult,
    gaps: Mapping[str, str],
    *,
    verbosity: int = 0,
    left_out: Sequence[str] = (),
    stream: IO[str] | None = None,
) -> None:
    """Each change with a compact diff of the resolved spec, then the one-line total."""
    out = stream or sys.stdout
    color = out.isatty()

    def echo(text: str, fg: str | None = None) -> None:
        click.echo(click.style(text, fg=fg) if color and fg else text, file=out)

    planned = [(n, o) for n, o in result.tasks.items() if o.status == "planned"]
    if verbosity >= 0 and planned:
        echo(f"opus {result.command} in context {result.context} would:")
        echo("")
    for name, outcome in planned if verbosity >= 0 else []:
        action = outcome.action or "?"
        if name in gaps:
            echo(f"  ? {action} {name}  (unknown: {gaps[name]}; apply would fail)", "yellow")
            continue
        fg = {"create": "green", "update": "yellow", "replace": "red", "delete": "red"}.get(action)
        why = plan_reason(outcome)
        echo(f"  {_SIGN.get(action, '?')} {action} {name}{f' ({why})' if why else ''}", fg)
        if action in ("update", "replace"):
            for line in diff_lines(outcome.diff):
                echo(line)
    problems = [
        (n, o) for n, o in result.tasks.items() if o.status in ("failed", "rolled_back", "skipped")
    ]
    if verbosity >= 0:
        if planned:
            echo("")
        for name, outcome in problems:
            echo(f"  ! {name}: {outcome.status.replace('_', ' ')}: {outcome.error}", "red")
        if left_out:
            echo(f"Left out by --target/--exclude: {', '.join(left_out)}")
    if verbosity >= -1:
        echo(count_line(result, gaps))
    echo(plan_total(result, gaps))


def plan_reason(outcome: TaskOutcome) -> str | None:
    """Why a planned change is shown, when the diff alone does not say it: drift, a
    replacement, a resource gone, an orphan."""
    reason = (outcome.details or {}).get("reason")
    if not isinstance(reason, str) or reason in ("spec changed", "not in state"):
        return None
    return reason
