"""Terraform-style plan output."""

from __future__ import annotations

import difflib
import json
import sys
from collections.abc import Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any

import click

from .colour import use_colour
from .words import outcome_word

if TYPE_CHECKING:
    from ..model import RunResult, TaskOutcome

_SIGN = {"create": "+", "update": "~", "replace": "-/+", "delete": "-"}


#: How the plan's "known after apply" placeholder reaches the diff (see opus.diff._plain).
_UNKNOWN_TEXT = "(known after apply)"


def _value(value: Any) -> str:
    if value == _UNKNOWN_TEXT:
        return _UNKNOWN_TEXT
    return json.dumps(value, default=str, ensure_ascii=False)


def _multiline(old: Any, new: Any) -> bool:
    return isinstance(old, str) and isinstance(new, str) and ("\n" in old or "\n" in new)


def _line_diff(old: str, new: str, indent: str) -> list[str]:
    """A unified diff of two texts, without its file header, indented under the key."""
    lines = difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=2)
    return [f"{indent}    {line}" for line in list(lines)[2:]]


def diff_lines(diff: Mapping[str, Any] | None, indent: str = "      ") -> list[str]:
    """``+ path = value``, ``- path = value``, ``~ path: old -> new`` (a line diff for
    multi-line text), ``~ path: (sensitive value changed)``, sorted by path."""
    diff = diff or {}
    lines: list[tuple[str, list[str]]] = []
    for path, value in (diff.get("added") or {}).items():
        lines.append((path, [f"{indent}+ {path} = {_value(value)}"]))
    for path, value in (diff.get("removed") or {}).items():
        lines.append((path, [f"{indent}- {path} = {_value(value)}"]))
    for path, (old, new) in (diff.get("changed") or {}).items():
        if _multiline(old, new):
            lines.append((path, [f"{indent}~ {path}:", *_line_diff(old, new, indent)]))
        else:
            lines.append((path, [f"{indent}~ {path}: {_value(old)} -> {_value(new)}"]))
    for path in diff.get("sensitive_changed") or ():
        lines.append((path, [f"{indent}~ {path}: (sensitive value changed)"]))
    return [line for _, group in sorted(lines) for line in group]


def plan_counts(result: RunResult, gaps: Mapping[str, str]) -> dict[str, int]:
    counts = {"create": 0, "update": 0, "replace": 0, "delete": 0, "unknown": 0}
    for name, outcome in result.tasks.items():
        if outcome.status != "planned":
            continue
        key = "unknown" if name in gaps else outcome.action or "unknown"
        counts[key] = counts.get(key, 0) + 1
    return counts


def plan_total(result: RunResult, gaps: Mapping[str, str], *, rest: bool = False) -> str:
    """``Plan: 1 to create, 2 to update, 0 to delete.`` (plus ``, N unknown`` if any); with
    ``rest``, the tasks that would not change and the duration follow in brackets:
    ``(5 unchanged, 1 failed in 0.12 s)``."""
    counts = plan_counts(result, gaps)
    if not any(counts.values()):
        if not result.ok:  # a task failed to plan: what it would do is not known
            return "No changes planned, but the plan is incomplete." + (
                _rest(result, gaps) if rest else ""
            )
        return "No changes. Everything is up to date." + (_rest(result, gaps) if rest else "")
    text = f"Plan: {counts['create']} to create, {counts['update']} to update, "
    if counts["replace"]:
        text += f"{counts['replace']} to replace, "
    text += f"{counts['delete']} to delete"
    if counts["unknown"]:
        text += f", {counts['unknown']} unknown"
    return text + "." + (_rest(result, gaps) if rest else "")


def _rest(result: RunResult, gaps: Mapping[str, str]) -> str:
    words: dict[str, int] = {}
    for name, outcome in result.tasks.items():
        if outcome.status != "planned":
            word = outcome_word(outcome, gaps.get(name)).lstrip("+~- ")
            words[word] = words.get(word, 0) + 1
    parts = [f"{n} {w}" for w, n in sorted(words.items(), key=lambda item: item[0] != "unchanged")]
    interrupted = " (interrupted)" if result.interrupted else ""
    return f" ({', '.join(parts) + ' ' if parts else ''}in {result.duration_s:.2f} s{interrupted})"


def print_plan(
    result: RunResult,
    gaps: Mapping[str, str],
    *,
    verbosity: int = 0,
    left_out: Sequence[str] = (),
    stream: IO[str] | None = None,
) -> None:
    """Each change with a compact diff of the resolved spec (a create: its attributes), then
    one summary line."""
    out = stream or sys.stdout
    color = use_colour(out)

    def echo(text: str, fg: str | None = None) -> None:
        click.echo(click.style(text, fg=fg) if color and fg else text, file=out, color=color)

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
        if action in ("create", "update", "replace"):
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
    echo(plan_total(result, gaps, rest=verbosity >= -1))


def plan_reason(outcome: TaskOutcome) -> str | None:
    """Why a planned change is shown, when the diff alone does not say it: drift, a
    replacement, a resource gone, an orphan."""
    reason = (outcome.details or {}).get("reason")
    if not isinstance(reason, str) or reason in ("spec changed", "not in state"):
        return None
    return reason
