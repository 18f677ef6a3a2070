"""The end of a run on stdout: a summary table and a count line, or JSON."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any

import click

from .words import count_line, error_excerpt, outcome_word

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from ..model import RunResult, TaskOutcome
    from ..registry import ProcessorRegistry

COLUMNS = ("task", "action", "status", "duration", "error")


def summary_rows(result: RunResult, gaps: Mapping[str, str]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for name, outcome in result.tasks.items():
        duration = f"{outcome.duration_s:.2f}s" if outcome.duration_s is not None else ""
        rows.append(
            (
                name,
                outcome.action or "",
                outcome_word(outcome, gaps.get(name)),
                duration,
                error_excerpt(outcome.error or gaps.get(name)),
            )
        )
    return rows


def console_for(out: IO[str]) -> Console:
    """A rich console for ``out``: the terminal's width on a TTY, otherwise wide enough that
    nothing wraps at 80 columns and without colour codes (unless ``FORCE_COLOR``).

    Strings it prints are shown as they are: no markup, emoji codes or highlighting (what
    opus prints comes from manifests, plugins and state; styles are given as styles)."""
    from rich.console import Console

    from .colour import force_color, no_color

    literal: dict[str, Any] = {"markup": False, "emoji": False, "highlight": False}
    if out.isatty():
        return Console(file=out, no_color=no_color() or None, **literal)
    if force_color():  # a pipe whose reader renders colours (a CI log)
        return Console(
            file=out,
            width=4000,
            soft_wrap=False,
            force_terminal=True,
            color_system="standard",
            **literal,
        )
    return Console(file=out, width=4000, color_system=None, soft_wrap=False, **literal)


def make_table(
    columns: tuple[str, ...], rows: list[tuple[str, ...]], styles: list[str | None] | None = None
) -> Table:
    from rich.table import Table
    from rich.text import Text

    # Text, not str: names, errors and outputs are shown as they are, never read as rich
    # markup (an error quoting "tr '[/]'" would not even draw) or emoji codes (":a:").
    table = Table()
    for column in columns:
        table.add_column(Text(column), overflow="fold")
    for i, row in enumerate(rows):
        table.add_row(*map(Text, row), style=styles[i] if styles else None)
    return table


def print_title(console: Console, title: str) -> None:
    """``title`` on its own line, as it is (no markup, emoji codes or highlighting)."""
    console.print(title, markup=False, emoji=False, highlight=False)


def _print_plain(
    title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]], out: IO[str]
) -> bool:
    """Draw the table without importing rich when ``out`` is a plain pipe (see
    :mod:`.plaintable`); ``False`` if rich is needed."""
    from .colour import force_color
    from .plaintable import plain_table

    if out.isatty() or force_color():
        return False
    text = plain_table(title, columns, rows, out)
    if text is None:
        return False
    out.write(text)
    return True


def print_table(
    title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]], stream: IO[str] | None = None
) -> None:
    """A titled table on ``stream`` (stdout), never wrapped when it is not a terminal."""
    out = stream or sys.stdout
    if _print_plain(title, columns, rows, out):
        return
    console = console_for(out)
    print_title(console, title)
    console.print(make_table(columns, rows))


def print_summary(
    result: RunResult, gaps: Mapping[str, str], stream: IO[str] | None = None, table: bool = True
) -> None:
    """A table of every task and the count line."""
    out = stream or sys.stdout
    rows = summary_rows(result, gaps)
    title = f"{result.command} in context {result.context} (run {result.run_id})"
    if table and rows and not _print_plain(title, COLUMNS, rows, out):
        styles = [
            {"failed": "red", "rolled back": "red", "skipped": "yellow", "unknown": "yellow"}.get(
                row[2]
            )
            for row in rows
        ]
        console = console_for(out)
        print_title(console, title)
        console.print(make_table(COLUMNS, rows, styles))
    for name, outcome in result.tasks.items():
        if outcome.action == "detect_drift" and outcome.drifted:
            click.echo(f"{name}: drifted: {drift_reason(outcome)}", file=out)
    click.echo(count_line(result, gaps), file=out)


def drift_reason(outcome: TaskOutcome) -> str:
    """Why ``drift`` found a task drifted: the processor's message, the spec paths that
    changed, or why it is not in state."""
    details = outcome.details or {}
    reasons = []
    if outcome.spec_drift:
        diff = details.get("spec_diff") or {}
        paths = sorted({*diff.get("added", {}), *diff.get("removed", {}), *diff.get("changed", {})})
        reasons.append(f"spec changed ({', '.join(paths)})" if paths else "spec changed")
    if outcome.resource_drift and details.get("message"):
        reasons.append(str(details["message"]))
    elif outcome.resource_drift:
        reasons.append("the resource changed")
    if not reasons and details.get("reason"):
        reasons.append(str(details["reason"]))
    return "; ".join(reasons) or "unknown reason"


def print_json(
    result: RunResult,
    gaps: Mapping[str, str],
    api_versions: Mapping[str, str],
    registry: ProcessorRegistry,
) -> None:
    """One JSON object; tasks a processor could not answer for carry ``"unknown"``.

    Outputs the task's processor (``api_versions``: task name to apiVersion) marks sensitive
    are ``***``, every output of a task not in ``api_versions`` too (``opus output
    --show-sensitive`` prints them).
    """
    from ..outputs import masked_outcome

    data = result.to_dict()
    for name, task in data["tasks"].items():
        masked_outcome(task, api_versions.get(name, ""), registry)
    for name, why in gaps.items():
        data["tasks"][name]["unknown"] = why
    click.echo(json.dumps(data, default=str))
