"""Asking before destructive runs, as Terraform does (``Proceed? [y/N]``; ``--yes`` skips it).

- ``delete``, and an ``apply`` whose plan deletes or replaces something, show what they will
  destroy and ask on a terminal. Without a terminal they refuse (exit 2) unless ``--yes``
  (config ``assume_yes: true``, env ``OPUS_ASSUME_YES``).
- A context listed in config ``protected`` needs ``--yes`` for every command that can change
  something; on a terminal the context's name must be typed as well.

Only the CLI asks; the Python API never does.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, NamedTuple

import click

from ..errors import OpusError
from .errors import ExitCode

if TYPE_CHECKING:
    from ..engine import Engine
    from ..graph import TaskGraph
    from ..model import RunResult, TaskOutcome
    from ..registry import ProcessorRegistry
    from ..saved_plan import Plan
    from ..state.base import StateBackend
    from .inputs import Inputs
    from .run_cmd import RunOptions
    from .session import Session

#: Actions that change nothing and are never confirmed.
READ_ONLY = frozenset({"plan", "describe", "detect_drift"})
#: Planned actions that destroy a resource.
DESTRUCTIVE = frozenset({"delete", "replace"})


class NotConfirmed(OpusError):
    """A destructive run without a terminal to ask on and without ``--yes`` (exit 2)."""


class Cancelled(Exception):
    """The user answered no; nothing was changed."""


class Question(NamedTuple):
    """What a run is about to do and how it is asked (a named tuple: made at every start,
    it costs a third of a frozen dataclass)."""

    command: str
    action: str
    context: str
    assume_yes: bool
    protected: bool
    interactive: bool


def is_interactive() -> bool:
    """Whether someone can answer: stdin is a terminal."""
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def destructive(plan: RunResult | None) -> list[TaskOutcome]:
    """The planned outcomes that delete or replace something."""
    if plan is None:
        return []
    return [o for o in plan.tasks.values() if o.status == "planned" and o.action in DESTRUCTIVE]


def _describe(outcomes: Iterable[TaskOutcome]) -> list[str]:
    sign = {"delete": "-", "replace": "-/+"}
    return [f"  {sign.get(o.action or '', '?')} {o.action} {o.name}" for o in outcomes]


def confirm(q: Question, plan_of: Callable[[], RunResult | None]) -> None:
    """Return when the run may go ahead; raise :class:`NotConfirmed` or :class:`Cancelled`.

    ``plan_of`` computes what the run would do (called only when the answer depends on it).
    """
    if q.action in READ_ONLY:
        return
    if q.protected:
        _protected(q, plan_of)
        return
    if q.assume_yes:
        return
    doomed = destructive(plan_of())
    if not doomed:
        return
    what = f"opus {q.command} would destroy {len(doomed)} task(s) in context {q.context!r}"
    if not q.interactive:
        names = ", ".join(o.name for o in doomed[:10]) + (", ..." if len(doomed) > 10 else "")
        raise NotConfirmed(
            f"{what} ({names}); there is no terminal to confirm on: pass --yes (-y) to "
            "proceed. Nothing was changed."
        )
    click.echo(f"{what}:", err=True)
    for line in _describe(doomed):
        click.echo(click.style(line, fg="red"), err=True)
    if not click.confirm("Proceed?", default=False, err=True):
        raise Cancelled


def _protected(q: Question, plan_of: Callable[[], RunResult | None]) -> None:
    if not q.assume_yes:
        how = "pass --yes and type the context name when asked" if q.interactive else "pass --yes"
        raise NotConfirmed(
            f"context {q.context!r} is protected (config 'protected'): opus {q.command} "
            f"changes it, so {how}. Nothing was changed."
        )
    if not q.interactive:  # CI: --yes is the confirmation
        return
    doomed = destructive(plan_of())
    click.echo(f"opus {q.command} will change protected context {q.context!r}.", err=True)
    if doomed:
        click.echo(f"It destroys {len(doomed)} task(s):", err=True)
        for line in _describe(doomed):
            click.echo(click.style(line, fg="red"), err=True)
    typed = click.prompt(
        f"Type the context name ({q.context}) to proceed", default="", show_default=False, err=True
    )
    if typed.strip() != q.context:
        raise Cancelled


def recorded_deletes(graph: TaskGraph, state: StateBackend, run: RunResult) -> RunResult:
    """What ``delete`` would remove: the tasks of ``graph`` recorded in state, dependents
    first, as planned deletes in ``run``; nothing is locked, run or written."""
    from ..model import TaskOutcome

    recorded = {record.name for record in state.list_records(run.context)}
    for name in reversed(graph.order):
        if name in recorded:
            run.tasks[name] = TaskOutcome(name, "planned", "delete", duration_s=0.0)
    return run


def may_destroy(opts: RunOptions, engine: Engine, inputs: Inputs) -> bool:
    """Whether an apply could delete or replace anything, cheaply and without planning: when
    it prunes, or when a recorded task's raw spec differs from its recorded spec under one of
    its processor's ``replace_on`` keys (a ``${...}`` reference there counts as different,
    so the plan decides)."""
    from ..planner import replace_paths

    if opts.prune and not (opts.targets or opts.excludes):
        return True
    processors = engine.plugins.processors()
    used = {t.api_version for t in inputs.tasks if t.api_version in processors}
    if not any(_replace_on(processors, api) for api in used):
        return False  # nothing can be replaced: no need to read the records
    records = {r.name: r for r in engine.state.list_records(opts.context)}
    for task in inputs.tasks:
        record = records.get(task.name)
        if record is None or record.applied_spec is None:
            continue
        try:
            processor = processors.get(task.api_version)
        except OpusError:  # unknown apiVersion: validation has said so
            continue
        if replace_paths(record.applied_spec, task.spec, processor.replace_on):
            return True
    return False


def _replace_on(processors: ProcessorRegistry, api_version: str) -> tuple[str, ...]:
    try:
        return tuple(processors.get(api_version).replace_on)
    except OpusError:  # a conflicting apiVersion: validation has said so
        return ()


def _command_for(action: str, command_map: Mapping[str, str]) -> str:
    for command, mapped in sorted(command_map.items()):
        if mapped == action:
            return command
    raise OpusError(f"no command maps to the {action} action")


def confirm_run(
    session: Session,
    opts: RunOptions,
    engine: Engine,
    graph: TaskGraph,
    inputs: Inputs,
    saved: Plan | None = None,
) -> None:
    """Ask before a destructive run command; raise when it may not go ahead.

    With a saved plan (``apply --plan``) the plan's own decisions say what is destroyed.
    """
    from ..engine import new_run_id
    from ..model import RunResult, TaskOutcome

    protected = protected_contexts(session)

    def plan_of() -> RunResult | None:
        if saved is not None:
            run = RunResult(new_run_id(), opts.command, "plan", saved.context)
            for name, decided in saved.tasks.items():
                if decided.action is not None:
                    run.tasks[name] = TaskOutcome(name, "planned", decided.action)
            return run
        if opts.action == "delete":
            run = RunResult(new_run_id(), opts.command, "plan", opts.context)
            return recorded_deletes(graph, engine.state, run)
        if opts.action == "apply" and may_destroy(opts, engine, inputs):
            return engine.run(
                _command_for("plan", engine.plugins.command_map()),
                inputs.tasks,
                context=opts.context,
                variables=inputs.variables,
                targets=opts.targets,
                excludes=opts.excludes,
                refresh=opts.refresh,
                prune=opts.prune and not (opts.targets or opts.excludes),
            )
        return None

    question = Question(
        command=opts.command,
        action=opts.action,
        context=opts.context,
        assume_yes=opts.assume_yes,
        protected=opts.context in protected,
        interactive=is_interactive(),
    )
    confirm(question, plan_of)


def protected_contexts(session: Session) -> list[str]:
    """The contexts listed in config ``protected``."""
    config = session.config
    return list(config.values.get("protected", ())) if config is not None else []


def confirm_change(session: Session, command: str, context: str, assume_yes: bool) -> None:
    """Refuse a command that changes ``context`` without running tasks (``state rm``,
    ``import``, ``state unlock``) when the context is protected and ``--yes`` is not given,
    as :func:`confirm_run` refuses ``apply``; on a terminal the context's name is typed."""
    question = Question(
        command=command,
        action="change",
        context=context,
        assume_yes=assume_yes,
        protected=context in protected_contexts(session),
        interactive=is_interactive(),
    )
    try:
        confirm(question, lambda: None)
    except Cancelled:
        click.echo("cancelled: nothing was changed", err=True)
        sys.exit(ExitCode.FAILED)


def confirm_every_context(session: Session, command: str, assume_yes: bool) -> None:
    """Refuse a command that changes every context (``state prune``) without ``--yes``
    while any context is protected."""
    protected = protected_contexts(session)
    if protected and not assume_yes:
        raise NotConfirmed(
            f"opus {command} changes every context, and protected context(s) "
            f"{', '.join(protected)} (config 'protected') need --yes: pass --yes. "
            "Nothing was changed."
        )
