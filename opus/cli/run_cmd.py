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
    EXIT_USAGE,
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
    from ..engine import Engine, new_run_id
    from ..model import RunResult
    from .inputs import check, read_inputs
    from .output import print_json, print_summary
    from .plan_view import destroy_plan, print_plan
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
        validate_as = _delete_command(plugins.command_map()) if opts.destroy else opts.command
        graph = check(engine, validate_as, inputs, opts.context, opts.targets, opts.excludes)
        if opts.destroy:
            result = destroy_plan(
                graph,
                engine.state,
                RunResult(
                    run_id=new_run_id(), command=opts.command, action="plan", context=opts.context
                ),
            )
            if events is not None:
                _replay(events, graph, result)
        else:
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
            )
    finally:
        if reporter is not None:
            reporter.close()
        signal.signal(signal.SIGTERM, previous)
        engine.close()
    tasks = {t.name: t for t in inputs.tasks}
    gaps = {n: why for n, o in result.tasks.items() if (why := gap(tasks[n], o)) is not None}
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


def _delete_command(command_map: dict[str, str]) -> str:
    for command, action in sorted(command_map.items()):
        if action == "delete":
            return command
    raise ConfigError("plan --destroy: no command maps to the delete action")


def _replay(events: EventStream, graph: Any, result: RunResult) -> None:
    """Events for a destroy plan, which does not go through the engine."""
    events.opus_run_start(
        result.run_id,
        result.command,
        result.action,
        result.context,
        [graph.tasks[n] for n in result.tasks],
    )
    for name in result.tasks:
        events.opus_task_done(graph.tasks[name], None, result.tasks[name])
    events.opus_run_finish(result)


def make_run_command(name: str, action: str) -> click.Command:
    """A click command running ``name`` (mapped to ``action``)."""

    params = []
    if action == "plan":
        params.append(
            click.Option(["--destroy"], is_flag=True, help="Show what delete would remove instead.")
        )

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
                events.error(str(exc), EXIT_USAGE)
            raise
        except KeyboardInterrupt:
            if events is not None:
                events.error("interrupted", EXIT_INTERRUPTED)
            raise
        sys.exit(code)

    return command
