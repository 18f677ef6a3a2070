"""``opus COMMAND -f ...``: one subcommand per command of the command map."""

from __future__ import annotations

import signal
import sys
from typing import Any

import click

from ..engine import Engine
from ..errors import ConfigError
from .errors import EXIT_CHANGES, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, handle_errors
from .options import manifest_options, output_option, read_inputs, state_option
from .output import LineReporter, print_result
from .session import Session

_HELP = {
    "apply": "Create what is missing and update what changed (from state).",
    "plan": "Show what apply would do; exit 3 when something would change.",
    "detect_drift": "Report spec and resource drift; exit 3 when anything drifted.",
    "delete": "Delete every task, dependents first.",
}


def _parse_limits(pairs: tuple[str, ...]) -> dict[str, int]:
    limits: dict[str, int] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not raw.isdigit() or int(raw) < 1:
            raise ConfigError(f"--group-limit {pair!r}: expected GROUP=N with N >= 1")
        limits[name] = int(raw)
    return limits


def exit_code(result: Any) -> int:
    """0 ok, 1 a task failed, 130 interrupted, 3 for plan with changes / drift found."""
    if result.interrupted:
        return EXIT_INTERRUPTED
    if not result.ok:
        return EXIT_FAILED
    if result.action == "plan" and result.changed:
        return EXIT_CHANGES
    if result.action == "detect_drift" and result.drifted:
        return EXIT_CHANGES
    return EXIT_OK


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def make_run_command(name: str, action: str) -> click.Command:
    """A click command running ``name`` (mapped to ``action``)."""

    @click.command(name=name, help=_HELP.get(action, f"Run the {action!r} action on every task."))
    @manifest_options
    @state_option
    @click.option("--parallelism", type=click.IntRange(min=1), default=10, show_default=True,
                  help="How many task actions may run at once.")
    @click.option("--executor", default="local", show_default=True,
                  help="local (threads), dask (a LocalCluster) or dask://HOST:PORT.")
    @click.option("--keep-going", is_flag=True, help="After a failure, go on with independent tasks.")
    @click.option("--lock-timeout", type=float, default=0.0, show_default=True, metavar="SECONDS",
                  help="Wait this long for another run's lock on the context.")
    @click.option("--group-limit", "group_limits", multiple=True, metavar="GROUP=N",
                  help="At most N tasks of concurrency group GROUP at once (repeatable).")
    @output_option("text", "json")
    @click.pass_obj
    @handle_errors
    def command(session: Session, files: tuple[str, ...], context: str,
                var_pairs: tuple[str, ...], values_files: tuple[str, ...],
                targets: tuple[str, ...], excludes: tuple[str, ...], disabled: tuple[str, ...],
                state_url: str, parallelism: int, executor: str, keep_going: bool,
                lock_timeout: float, group_limits: tuple[str, ...], output: str) -> None:
        session.disable(list(disabled))
        tasks, variables = read_inputs(files, context, var_pairs, values_files)
        plugins = session.plugins()
        if output == "text" and session.verbosity >= 0:
            plugins.register(LineReporter(), name="cli-lines")
        engine = Engine(
            state=state_url, parallelism=parallelism, executor=executor, plugins=plugins,
            lock_timeout=lock_timeout, keep_going=keep_going,
            group_limits=_parse_limits(group_limits),
        )
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            result = engine.run(name, tasks, context=context, variables=variables,
                                targets=targets, excludes=excludes)
        finally:
            signal.signal(signal.SIGTERM, previous)
            engine.close()
        print_result(result, output, quiet=session.verbosity < 0)
        sys.exit(exit_code(result))

    return command
