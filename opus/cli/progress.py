"""Following a run on stderr: a live rich view on a terminal, plain lines otherwise.

Both are plugins implementing the lifecycle hooks; the run command registers one of them.
"""

from __future__ import annotations

import sys
import threading
from typing import IO, TYPE_CHECKING, Any

from ..hookspecs import hookimpl
from .words import GapFinder, error_excerpt, outcome_word

if TYPE_CHECKING:
    from rich.console import Console

    from ..model import RunResult, Task, TaskOutcome


def _no_gap(task: Any, outcome: Any) -> None:
    return None


class PlainProgress:
    """One greppable line per finished task (``NAME: WORD (1.23s): error``); with
    ``verbosity >= 1`` also a line when a run or task starts."""

    def __init__(
        self, stream: IO[str] | None = None, verbosity: int = 0, gap: GapFinder = _no_gap
    ) -> None:
        self._stream = stream
        self.verbosity = verbosity
        self.gap = gap
        self._lock = threading.Lock()

    @property
    def stream(self) -> IO[str]:
        return self._stream or sys.stderr

    def _print(self, line: str) -> None:
        with self._lock:
            print(line, file=self.stream, flush=True)

    @hookimpl
    def opus_run_start(
        self, run_id: str, command: str, action: str, context: str, tasks: list[Task]
    ) -> None:
        if self.verbosity >= 1:
            self._print(f"run {run_id}: {command} in context {context}, {len(tasks)} task(s)")

    @hookimpl
    def opus_task_start(self, task: Task, ctx: Any) -> None:
        if self.verbosity >= 1:
            self._print(f"{task.name}: {ctx.action} ...")

    @hookimpl
    def opus_task_done(self, task: Task, ctx: Any, outcome: TaskOutcome) -> None:
        self._line(task, outcome)

    @hookimpl
    def opus_task_failed(self, task: Task, ctx: Any, outcome: TaskOutcome) -> None:
        self._line(task, outcome)

    def _line(self, task: Task, outcome: TaskOutcome) -> None:
        gap = self.gap(task, outcome)
        took = f" ({outcome.duration_s:.2f}s)" if outcome.duration_s is not None else ""
        why = outcome.error or gap
        reason = f": {why}" if why else ""
        self._print(f"{task.name}: {outcome_word(outcome, gap)}{took}{reason}")

    def close(self) -> None:
        """Nothing to tear down (the live view has)."""


class LiveProgress:
    """A rich live view: a spinner line per running task (action, elapsed time), a bar
    over the run, and a line above the view for every finished task, failures in red."""

    def __init__(self, console: Console, gap: GapFinder = _no_gap) -> None:
        from rich.console import Group
        from rich.live import Live
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self.console = console
        self.gap = gap
        self.running = Progress(
            SpinnerColumn(),
            # markup off: actions and task names are shown as they are
            TextColumn("{task.fields[action]:<12}", style="cyan", markup=False),
            TextColumn("{task.description}", markup=False),
            TimeElapsedColumn(),
            console=console,
        )
        self.overall = Progress(
            TextColumn("{task.description}", style="bold", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        )
        self.live = Live(
            Group(self.running, self.overall),
            console=console,
            transient=True,
            refresh_per_second=10,
            redirect_stdout=sys.stdout.isatty(),
            redirect_stderr=True,
        )
        self._ids: dict[str, Any] = {}
        self._bar: Any = None

    @hookimpl
    def opus_run_start(
        self, run_id: str, command: str, action: str, context: str, tasks: list[Task]
    ) -> None:
        self._bar = self.overall.add_task(f"{command} · {context}", total=len(tasks) or 1)
        self.live.start()

    @hookimpl
    def opus_task_start(self, task: Task, ctx: Any) -> None:
        self._ids[task.name] = self.running.add_task(task.name, action=ctx.action)

    @hookimpl
    def opus_task_done(self, task: Task, ctx: Any, outcome: TaskOutcome) -> None:
        self._finished(task, outcome)

    @hookimpl
    def opus_task_failed(self, task: Task, ctx: Any, outcome: TaskOutcome) -> None:
        self._finished(task, outcome)

    @hookimpl
    def opus_run_finish(self, result: RunResult) -> None:
        self.close()

    def _finished(self, task: Task, outcome: TaskOutcome) -> None:
        from rich.text import Text

        task_id = self._ids.pop(task.name, None)
        if task_id is not None:
            self.running.remove_task(task_id)
        if self._bar is not None:
            self.overall.advance(self._bar)
        gap = self.gap(task, outcome)
        word = outcome_word(outcome, gap)
        style, mark = {
            "failed": ("bold red", "✗"),
            "rolled_back": ("red", "✗"),
            "skipped": ("yellow", "-"),
        }.get(outcome.status, ("green", "✓"))
        if word == "unknown":
            style, mark = "yellow", "?"
        line = Text(f"{mark} ", style=style)
        line.append(task.name, style="bold")
        line.append(f" {word}", style=style)
        if outcome.duration_s is not None:
            line.append(f" {outcome.duration_s:.2f}s", style="dim")
        why = outcome.error or gap
        if why:
            line.append(f": {error_excerpt(why, 200)}", style=style)
        self.console.print(line)

    def close(self) -> None:
        """Stop the live view (idempotent)."""
        if self.live.is_started:
            self.live.stop()


def make_progress(
    *, output: str, progress: bool, verbosity: int, gap: GapFinder = _no_gap
) -> PlainProgress | LiveProgress | None:
    """The reporter for this run: live on a terminal, plain lines for text output (or with
    ``-v``), nothing with ``-q``."""
    if verbosity < 0:
        return None
    if progress and sys.stderr.isatty():
        from rich.console import Console

        # literal: what reaches the console as a string (a plugin's partial line on the
        # redirected stderr, say) is shown as it is, never read as markup or emoji codes
        console = Console(stderr=True, markup=False, emoji=False, highlight=False)
        if console.is_terminal and not console.is_dumb_terminal:
            return LiveProgress(console, gap)
    if output == "text" or verbosity >= 1:
        return PlainProgress(verbosity=verbosity, gap=gap)
    return None
