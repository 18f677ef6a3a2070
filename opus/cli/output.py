"""The end of a run on stdout: a summary table and a count line, or JSON."""

from __future__ import annotations

import json
import sys
from typing import IO, TYPE_CHECKING, Mapping

import click

from .words import count_line, error_excerpt, outcome_word

if TYPE_CHECKING:
    from ..model import RunResult

COLUMNS = ("task", "action", "status", "duration", "error")


def summary_rows(result: "RunResult", gaps: Mapping[str, str]) -> list[tuple[str, ...]]:
    rows = []
    for name, outcome in result.tasks.items():
        duration = f"{outcome.duration_s:.2f}s" if outcome.duration_s is not None else ""
        rows.append((name, outcome.action or "", outcome_word(outcome, gaps.get(name)),
                     duration, error_excerpt(outcome.error or gaps.get(name))))
    return rows


def plain_table(rows: list[tuple[str, ...]], header: tuple[str, ...] = COLUMNS) -> str:
    """Columns aligned with spaces, no wrapping, no trailing blanks: for pipes and files."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(header, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def print_table(title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]],
                stream: IO[str] | None = None) -> None:
    """A titled table: rich on a terminal, :func:`plain_table` otherwise (never wrapped)."""
    out = stream or sys.stdout
    if out.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, title_justify="left")
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*row)
        Console(file=out).print(table)
        return
    click.echo(f"{title}:", file=out)
    click.echo(plain_table(rows, columns) if rows else "(none)", file=out)


def print_summary(result: "RunResult", gaps: Mapping[str, str], stream: IO[str] | None = None,
                  table: bool = True) -> None:
    """A table (rich on a terminal, plain text otherwise) and the count line."""
    out = stream or sys.stdout
    rows = summary_rows(result, gaps)
    if table and rows:
        if out.isatty():
            from rich.console import Console
            from rich.table import Table

            console = Console(file=out)
            rich_table = Table(title=f"{result.command} in context {result.context} "
                                     f"(run {result.run_id})", title_justify="left")
            for column in COLUMNS:
                rich_table.add_column(column, overflow="fold")
            for row in rows:
                style = {"failed": "red", "rolled back": "red", "skipped": "yellow",
                         "unknown": "yellow"}.get(row[2])
                rich_table.add_row(*row, style=style)
            console.print(rich_table)
        else:
            click.echo(f"{result.command} in context {result.context} (run {result.run_id})",
                       file=out)
            click.echo(plain_table(rows), file=out)
    click.echo(count_line(result, gaps), file=out)


def print_json(result: "RunResult", gaps: Mapping[str, str]) -> None:
    """One JSON object; tasks a processor could not answer for carry ``"unknown"``."""
    data = result.to_dict()
    for name, why in gaps.items():
        data["tasks"][name]["unknown"] = why
    click.echo(json.dumps(data, default=str))
