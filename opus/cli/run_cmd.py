"""``opus COMMAND -f ...``: one subcommand per command of the command map."""

from __future__ import annotations

import gc
import os
import signal
import sys
from typing import TYPE_CHECKING, Any, NamedTuple

import click

from ..collector import paused
from ..errors import ConfigError, OpusError
from .confirm import Cancelled, confirm_run
from .errors import (
    EXIT_CHANGES,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    cli_message,
    exit_code_for,
    handle_errors,
)
from .options import (
    manifest_options,
    output_option,
    run_options,
    state_option,
    verbosity_params,
    yes_option,
)
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


class RunOptions(NamedTuple):
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
    report: str | None = None
    assume_yes: bool = False
    destroy: bool = False
    refresh: bool = True
    prune: bool = False
    out: str | None = None
    plan_file: str | None = None


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
    """Run one command and print its result; return the exit code.

    Reading and checking the inputs make many objects and no cyclic garbage, so the cyclic
    garbage collector waits until they are done (it would walk every object made so far
    again and again); then the tasks and their graph, which live as long as the command,
    are frozen out of its sight for the run. They are given back to it afterwards, unless
    something was frozen before (the console-script entry point freezes the modules it
    loaded, and the process ends with the command): then they stay frozen, and the
    interpreter's last collection at exit does not walk them all once more (~20 ms).
    """
    frozen_before = gc.get_freeze_count()
    try:
        with paused() as collecting:
            return _execute(session, opts, events, collecting)
    finally:
        if not frozen_before:
            gc.unfreeze()


def _execute(
    session: Session, opts: RunOptions, events: EventStream | None, collecting: bool
) -> int:
    from ..engine import Engine
    from .inputs import Inputs, check, read_inputs
    from .output import print_json, print_summary
    from .progress import make_progress
    from .report_out import check_report_path, write_report
    from .words import capability_gaps

    report_path = check_report_path(opts.report, "--report")
    saved = None
    if opts.plan_file is not None:
        from ..saved_plan import Plan

        saved = Plan.load(opts.plan_file)
        opts = opts._replace(context=saved.context)
        inputs = Inputs(list(saved.manifests), dict(saved.variables))
    else:
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
        targets = saved.targets if saved else opts.targets
        excludes = saved.excludes if saved else opts.excludes
        graph = check(engine, opts.command, inputs, opts.context, targets, excludes,
                      destroy=opts.destroy)  # fmt: skip
        gc.freeze()  # see execute
        if collecting:
            gc.enable()
        if not opts.destroy:
            confirm_run(session, opts, engine, graph, inputs, saved)
        if opts.prune and (opts.targets or opts.excludes):
            click.echo("warning: --prune is ignored with --target/--exclude", err=True)
        reporter = make_progress(
            output=opts.output, progress=opts.progress, verbosity=session.verbosity, gap=gap
        )
        if reporter is not None:
            plugins.register(reporter, name="cli-progress")
        if events is not None:
            events.mask_outputs(plugins.processors())
            plugins.register(events, name="cli-events")
        prune = opts.prune and not (opts.targets or opts.excludes)
        if saved is not None:
            result = engine.apply_plan(saved, command=opts.command)
        elif opts.out is not None:
            made = engine.plan(
                inputs.tasks, opts.context, inputs.variables, command=opts.command,
                targets=opts.targets, excludes=opts.excludes, refresh=opts.refresh, prune=prune,
            )  # fmt: skip
            assert made.result is not None
            result = made.result
            if result.ok:
                made.save(opts.out)
                click.echo(f"plan saved to {opts.out} (apply it with: opus apply --plan "
                           f"{opts.out})", err=True)  # fmt: skip
            else:
                click.echo(f"plan not saved to {opts.out}: some tasks failed", err=True)
        else:
            result = engine.run(
                opts.command, inputs.tasks, context=opts.context, variables=inputs.variables,
                targets=opts.targets, excludes=opts.excludes, refresh=opts.refresh, prune=prune,
                destroy=opts.destroy,
            )  # fmt: skip
    finally:
        if reporter is not None:
            reporter.close()
        signal.signal(signal.SIGTERM, previous)
        engine.close()
    if result.orphans and opts.output != "json":
        tried = [n for n in result.orphans if n in result.tasks]
        pruned = [n for n in tried if result.tasks[n].status == "done"]
        left = [n for n in result.orphans if n not in result.tasks]
        if left:
            click.echo(
                f"warning: in state but no longer in the manifests: {', '.join(left)} "
                "(--prune deletes them)",
                err=True,
            )
        if pruned and result.action != "plan":
            click.echo(f"pruned (no longer in the manifests): {', '.join(pruned)}", err=True)
        not_pruned = [n for n in tried if n not in pruned]
        if not_pruned and result.action != "plan":
            click.echo(f"not pruned (failed, still in state): {', '.join(not_pruned)}", err=True)
    tasks = {t.name: t for t in inputs.tasks}
    gaps = {
        n: why
        for n, o in result.tasks.items()
        if n in tasks and (why := gap(tasks[n], o)) is not None
    }
    code = exit_code(result)
    if report_path is not None:
        from ..report import from_result

        write_report(from_result(result, graph), report_path, "--report")
    if opts.output == "json":
        print_json(result, gaps, {n: t.api_version for n, t in tasks.items()}, plugins.processors())
    elif opts.output == "markdown":
        from .markdown import render_markdown

        left_out = [n for n in tasks if n not in result.tasks and n not in graph.out_of_scope]
        click.echo(render_markdown(result, gaps, left_out), nl=False)
    elif opts.output == "text" and result.action == "plan":
        from .plan_view import print_plan

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

    params: list[click.Parameter] = verbosity_params()
    if action == "plan":
        params += [
            click.Option(
                ["--destroy"], is_flag=True, help="Show what delete would remove instead."
            ),
            click.Option(
                ["--out"],
                metavar="FILE",
                type=click.Path(dir_okay=False),
                help="Save the plan (JSON, mode 0600) for `apply --plan FILE`.",
            ),
        ]
    if action == "apply":
        params.append(
            click.Option(
                ["--plan", "plan_file"],
                metavar="FILE",
                type=click.Path(dir_okay=False),
                help="Apply exactly this saved plan (from `plan --out`); no -f. Refused when "
                "state changed since it was made.",
            )
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
    @output_option("text", "json", "ndjson", "markdown")
    @click.option(
        "--report",
        "report",
        metavar="FILE",
        type=click.Path(),
        help="Write a self-contained HTML report of the run (timeline, graph, errors) to FILE.",
    )
    @yes_option(
        "Do not ask before deleting or replacing (needed without a terminal, and always in "
        "a protected context)."
    )
    @click.pass_obj
    @handle_errors
    def command(session: Session, /, disabled: tuple[str, ...], **kwargs: Any) -> None:
        session.disable(list(disabled))
        opts = RunOptions(command=name, action=action, **kwargs)
        check_plan_usage(opts)
        events = None
        if opts.output == "ndjson":
            from .events import EventStream

            events = EventStream()
        try:
            code = execute(session, opts, events)
        except Cancelled:
            click.echo("cancelled: nothing was changed", err=True)
            if events is not None:
                events.error("cancelled", EXIT_FAILED)
            sys.exit(EXIT_FAILED)
        except OpusError as exc:
            if events is not None:
                events.error(cli_message(exc), exit_code_for(exc))
            raise
        except KeyboardInterrupt:
            if events is not None:
                events.error("interrupted", EXIT_INTERRUPTED)
            raise
        sys.exit(code)

    if action == "apply":  # -f is not needed with --plan (checked in check_plan_usage)
        for param in command.params:
            if param.name == "files":
                param.required = False
    return command


def check_plan_usage(opts: RunOptions) -> None:
    """``--plan`` carries its manifests, variables and options: refuse what would be
    ignored; ``--out`` does not combine with ``--destroy``."""
    if opts.out is not None and opts.destroy:
        raise click.UsageError("--out cannot be combined with --destroy (not supported yet)")
    if opts.plan_file is None:
        if not opts.files:
            raise click.UsageError("Missing option '-f' / '--file'.")
        return
    ctx = click.get_current_context()
    flags = {
        "files": "-f/--file",
        "var_pairs": "--var",
        "values_files": "--values",
        "targets": "--target",
        "excludes": "--exclude",
        "prune": "--prune",
        "context": "--context",
        "refresh": "--refresh/--no-refresh",
    }
    given = [
        flag
        for param, flag in flags.items()
        if ctx.get_parameter_source(param) == click.core.ParameterSource.COMMANDLINE
    ]
    if given:
        raise click.UsageError(
            f"{', '.join(given)} cannot be used with --plan: a saved plan carries its "
            "manifests, context, variables and options"
        )
