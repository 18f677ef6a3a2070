"""``opus COMMAND -f ...``: one subcommand per command of the command map."""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from ..errors import ConfigError, OpusError
from .errors import (
    EXIT_CHANGES,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    cli_message,
    exit_code_for,
    handle_errors,
)
from .options import manifest_options, output_option, run_options, state_option
from .session import Session

if TYPE_CHECKING:
    from ..model import RunResult
    from .events import EventStream

_HELP = {
    "apply": "Create what is missing and update what changed (from state).",
    "plan": "Show what apply would do (or, with --destroy, delete); exit 3 when something "
    "would change.",
    "detect_drift": "Report spec and resource drift; exit 3 when anything drifted.",
    "delete": "Delete every task, dependents first.",
}


@dataclass
class RunOptions:
    """What a run command was asked to do."""

    command: str
    action: str
    files: tuple[str, ...]
    context: str
    var_pairs: tuple[str, ...]
    values_files: tuple[str, ...]
    targets: tuple[str, ...]
    excludes: tuple[str, ...]
    state_url: str
    parallelism: int
    executor: str
    keep_going: bool
    lock_timeout: float
    task_timeout: float | None
    group_limits: tuple[str, ...]
    progress: bool
    output: str
    destroy: bool = False
    refresh: bool = True
    prune: bool = False


def parse_limits(pairs: tuple[str, ...]) -> dict[str, int]:
    """``("db=1", ...)`` as ``{"db": 1}``; a bad pair is a ConfigError."""
    limits: dict[str, int] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name or not raw.isdigit() or int(raw) < 1:
            raise ConfigError(f"--group-limit {pair!r}: expected GROUP=N with N >= 1")
        limits[name] = int(raw)
    return limits


def exit_code(result: RunResult) -> int:
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


def execute(session: Session, opts: RunOptions, events: EventStream | None) -> int:
    """Run one command and print its result; return the exit code."""
    from ..engine import Engine
    from .inputs import check, read_inputs
    from .output import print_json, print_summary
    from .plan_view import print_plan
    from .progress import make_progress
    from .words import capability_gaps

    inputs = read_inputs(opts.files, opts.context, opts.var_pairs, opts.values_files)
    plugins = session.plugins()
    engine = Engine(
        state=opts.state_url,
        parallelism=opts.parallelism,
        executor=opts.executor,
        plugins=plugins,
        lock_timeout=opts.lock_timeout,
        keep_going=opts.keep_going,
        group_limits=parse_limits(opts.group_limits),
        task_timeout=opts.task_timeout,
    )
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    gap = capability_gaps(plugins)
    reporter = None
    try:
        graph = check(engine, opts.command, inputs, opts.context, opts.targets, opts.excludes,
                      destroy=opts.destroy)  # fmt: skip
        if opts.prune and (opts.targets or opts.excludes):
            click.echo("warning: --prune is ignored with --target/--exclude", err=True)
        reporter = make_progress(
            output=opts.output, progress=opts.progress, verbosity=session.verbosity, gap=gap
        )
        if reporter is not None:
            plugins.register(reporter, name="cli-progress")
        if events is not None:
            plugins.register(events, name="cli-events")
        result = engine.run(
            opts.command,
            inputs.tasks,
            context=opts.context,
            variables=inputs.variables,
            targets=opts.targets,
            excludes=opts.excludes,
            refresh=opts.refresh,
            prune=opts.prune and not (opts.targets or opts.excludes),
            destroy=opts.destroy,
        )
    finally:
        if reporter is not None:
            reporter.close()
        signal.signal(signal.SIGTERM, previous)
        engine.close()
    if result.orphans and opts.output != "json":
        pruned = [n for n in result.orphans if n in result.tasks]
        left = [n for n in result.orphans if n not in result.tasks]
        if left:
            click.echo(
                f"warning: in state but no longer in the manifests: {', '.join(left)} "
                "(--prune deletes them)",
                err=True,
            )
        if pruned and result.action != "plan":
            click.echo(f"pruned (no longer in the manifests): {', '.join(pruned)}", err=True)
    tasks = {t.name: t for t in inputs.tasks}
    gaps = {
        n: why
        for n, o in result.tasks.items()
        if n in tasks and (why := gap(tasks[n], o)) is not None
    }
    code = exit_code(result)
    if opts.output == "json":
        print_json(result, gaps)
    elif opts.output == "text" and result.action == "plan":
        left_out = [n for n in tasks if n not in result.tasks and n not in graph.out_of_scope]
        print_plan(result, gaps, verbosity=session.verbosity, left_out=left_out)
    elif opts.output == "text" and session.verbosity >= -1:
        print_summary(result, gaps, table=session.verbosity >= 0)
    if result.state_error and opts.output != "json":
        click.echo(f"error: {result.state_error}", err=True)
    if events is not None:
        events.exit(code)
    if result.abandoned:
        # Threads still run actions opus gave up on (a second Ctrl-C, a timed-out action
        # that ignored its cancellation): state is recorded and the result printed, so end
        # now instead of letting the interpreter join those threads.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def make_run_command(name: str, action: str) -> click.Command:
    """A click command running ``name`` (mapped to ``action``)."""

    params: list[click.Parameter] = []
    if action == "plan":
        params.append(
            click.Option(["--destroy"], is_flag=True, help="Show what delete would remove instead.")
        )
    if action in ("apply", "plan"):
        params += [
            click.Option(
                ["--refresh/--no-refresh"],
                default=True,
                envvar="OPUS_REFRESH",
                show_envvar=True,
                help="Ask processors (detect_drift) about recorded resources before deciding: "
                "drifted ones are updated, gone ones created again.",
            ),
            click.Option(
                ["--prune"],
                is_flag=True,
                help="Delete (plan: show) tasks recorded in the context but no longer in the "
                "manifests; never with --target/--exclude.",
            ),
        ]

    @click.command(
        name=name,
        params=params,
        help=_HELP.get(action, f"Run the {action!r} action on every task."),
    )
    @manifest_options
    @state_option
    @run_options
    @output_option("text", "json", "ndjson")
    @click.pass_obj
    @handle_errors
    def command(session: Session, /, disabled: tuple[str, ...], **kwargs: Any) -> None:
        session.disable(list(disabled))
        opts = RunOptions(command=name, action=action, **kwargs)
        events = None
        if opts.output == "ndjson":
            from .events import EventStream

            events = EventStream()
        try:
            code = execute(session, opts, events)
        except OpusError as exc:
            if events is not None:
                events.error(cli_message(exc), exit_code_for(exc))
            raise
        except KeyboardInterrupt:
            if events is not None:
                events.error("interrupted", EXIT_INTERRUPTED)
            raise
        sys.exit(code)

    return command
