"""How run results are shown: per-task lines while running, a summary table, JSON."""

from __future__ import annotations

import json
import sys
from typing import IO, Any

import click
from rich.console import Console
from rich.table import Table

from ..hookspecs import hookimpl
from ..model import RunResult, Task, TaskOutcome

_VERB = {"create": "created", "update": "updated", "delete": "deleted",
         "describe": "described", "detect_drift": "checked", "rollback": "rolled back"}


def outcome_word(outcome: TaskOutcome) -> str:
    """``created``, ``unchanged``, ``failed``..., or for plan ``+ create``."""
    if outcome.status == "planned":
        return {"create": "+ create", "update": "~ update", "delete": "- delete"}.get(
            outcome.action or "", outcome.action or "?"
        )
    if outcome.status == "done":
        if outcome.action == "detect_drift":
            return {True: "drifted", False: "in sync", None: "unknown"}[outcome.drifted]
        return _VERB.get(outcome.action or "", "done")
    return outcome.status.replace("_", " ")


def count_line(result: RunResult) -> str:
    """``3 created, 1 updated, 5 unchanged, 1 failed, 2 skipped in 1.24 s``."""
    counts: dict[str, int] = {}
    for outcome in result.tasks.values():
        word = outcome_word(outcome).lstrip("+~- ")
        if outcome.status == "planned":
            word = f"to {word}"
        counts[word] = counts.get(word, 0) + 1
    order = ["to create", "to update", "to delete", "created", "updated", "deleted",
             "described", "drifted", "in sync", "unknown", "unchanged", "rolled back",
             "failed", "skipped"]
    parts = [f"{counts.pop(w)} {w}" for w in order if w in counts]
    parts += [f"{n} {w}" for w, n in sorted(counts.items())]
    text = ", ".join(parts) or "no tasks"
    if result.interrupted:
        text += " (interrupted)"
    return f"{text} in {result.duration_s:.2f} s"


class LineReporter:
    """A plugin that prints one plain line per finished task (stderr, greppable)."""

    name = "cli-lines"

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr

    @hookimpl
    def opus_task_done(self, task: Task, ctx: Any, outcome: TaskOutcome) -> None:
        self._line(outcome)

    @hookimpl
    def opus_task_failed(self, task: Task, ctx: Any, outcome: TaskOutcome) -> None:
        self._line(outcome)

    def _line(self, outcome: TaskOutcome) -> None:
        took = f" ({outcome.duration_s:.2f}s)" if outcome.duration_s else ""
        error = f": {outcome.error}" if outcome.error else ""
        print(f"{outcome.name}: {outcome_word(outcome)}{took}{error}", file=self.stream, flush=True)


def summary_table(result: RunResult) -> Table:
    table = Table(title=f"{result.command} in context {result.context} (run {result.run_id})",
                  title_justify="left")
    for column in ("task", "action", "status", "duration", "error"):
        table.add_column(column, overflow="fold")
    for name, outcome in result.tasks.items():
        error = (outcome.error or "").splitlines()[0][:120] if outcome.error else ""
        duration = f"{outcome.duration_s:.2f}s" if outcome.duration_s is not None else ""
        table.add_row(name, outcome.action or "", outcome_word(outcome), duration, error)
    return table


def print_result(result: RunResult, output: str, quiet: bool = False) -> None:
    """The end of a run on stdout: JSON, or a table and a count line."""
    if output == "json":
        click.echo(json.dumps(result.to_dict(), default=str))
        return
    console = Console(file=sys.stdout, soft_wrap=False)
    if not quiet:
        console.print(summary_table(result))
        if result.action == "plan":
            print_plan_details(result, console)
    console.print(count_line(result), highlight=False)


def print_plan_details(result: RunResult, console: Console) -> None:
    """Terraform-style: each planned change with a compact diff of the resolved spec."""
    for name, outcome in result.tasks.items():
        if outcome.status != "planned":
            continue
        console.print(f"{outcome_word(outcome)} {name}", highlight=False, markup=False, soft_wrap=True)
        diff = outcome.diff or {}
        for path, value in (diff.get("added") or {}).items():
            console.print(f"    + {path} = {json.dumps(value, default=str)}", highlight=False, markup=False, soft_wrap=True)
        for path, value in (diff.get("removed") or {}).items():
            console.print(f"    - {path} = {json.dumps(value, default=str)}", highlight=False, markup=False, soft_wrap=True)
        for path, (old, new) in (diff.get("changed") or {}).items():
            console.print(
                f"    ~ {path}: {json.dumps(old, default=str)} -> {json.dumps(new, default=str)}",
                highlight=False, markup=False, soft_wrap=True,
            )
