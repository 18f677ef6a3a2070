"""Reading manifests and variables, and reporting every problem with them at once."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import click

from ..errors import ConfigError, OpusError, ValidationErrors, VariableError

if TYPE_CHECKING:
    from ..engine import Engine
    from ..graph import TaskGraph
    from ..model import Task
    from ..parsecache import ParseCache


class Inputs(NamedTuple):
    """Tasks and variables read from the command line, and what was wrong with them."""

    tasks: list[Task]
    variables: dict[str, Any]
    problems: Sequence[OpusError] = ()
    #: What could not be read, so its variables are missing: ``(how it is named, the one
    #: variable it could define, or None for a values file that could define any)``.
    unread: Sequence[tuple[str, str | None]] = ()


def read_inputs(
    files: Sequence[str], context: str, var_pairs: Sequence[str], values_files: Sequence[str]
) -> Inputs:
    """Load manifests and variables (values files in order, ``--var`` on top), collecting
    problems instead of stopping at the first."""
    from ..manifest import collect_tasks
    from ..variables import load_values, parse_assignments

    if not files:
        raise ConfigError("no task manifests given (use -f PATH)")
    problems: list[OpusError] = []
    variables: dict[str, Any] = {}
    unread: list[tuple[str, str | None]] = []
    for path in values_files:
        try:
            variables.update(load_values(path, context))
        except OpusError as exc:
            problems.append(exc)
            unread.append((str(path), None))
    for pair in var_pairs:  # one bad --var must not hide the others (then "not defined")
        try:
            variables.update(parse_assignments((pair,)))
        except OpusError as exc:
            problems.append(exc)
            # the name it was meant to set: what comes before '=' (or ':' or a space)
            name = re.split(r"[=:\s]", pair.strip(), maxsplit=1)[0]
            unread.append((f"--var {name}" if name else "a --var", name or None))
    tasks, bad = collect_tasks(files, cache=manifest_cache())
    if not tasks and not bad:
        click.echo(f"warning: no tasks found in {', '.join(files)}", err=True)
    return Inputs(tasks, variables, problems + bad, unread)


def manifest_cache() -> ParseCache | None:
    """The parse cache the environment and the config file ask for (``None``: off)."""
    from ..parsecache import configure, from_settings
    from .session import Session

    ctx = click.get_current_context(silent=True)
    session = ctx.find_object(Session) if ctx is not None else None
    config = session.config if session is not None else None
    configure(config.values if config is not None else None)  # the schema cache follows it
    return from_settings()


def combine(problems: Sequence[OpusError]) -> OpusError:
    """One error for one problem, :class:`ValidationErrors` for several."""
    flat: list[OpusError] = []
    for problem in problems:
        flat.extend(problem.errors if isinstance(problem, ValidationErrors) else [problem])
    return flat[0] if len(flat) == 1 else ValidationErrors(flat)


def problems_of(exc: OpusError) -> list[OpusError]:
    return list(exc.errors) if isinstance(exc, ValidationErrors) else [exc]


def check(
    engine: Engine,
    command: str,
    inputs: Inputs,
    context: str,
    targets: Sequence[str] = (),
    excludes: Sequence[str] = (),
    *,
    destroy: bool = False,
) -> TaskGraph:
    """Validate as a run would; raise the input problems together with the graph's."""
    problems = list(inputs.problems)
    try:
        graph = engine.validate(
            command,
            inputs.tasks,
            context,
            inputs.variables,
            targets=targets,
            excludes=excludes,
            destroy=destroy,
            keep=True,  # the run that follows, of these very tasks, is not checked again
        )
    except OpusError as exc:
        problems += [_unread_hint(p, inputs.unread) for p in problems_of(exc)]
    if problems:
        raise combine(problems)
    return graph


def _unread_hint(problem: OpusError, unread: Sequence[tuple[str, str | None]]) -> OpusError:
    """A "variable is not defined" problem says which unreadable inputs may define it."""
    if not unread or type(problem) is not VariableError or problem.variable is None:
        return problem
    could = [label for label, name in unread if name is None or name == problem.variable]
    if not could:
        return problem
    return VariableError(
        f"{problem}; it may be in {', '.join(could)}, which could not be read",
        argument=problem.argument,
        variable=problem.variable,
    )
