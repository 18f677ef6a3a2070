"""Options shared by the commands that read task manifests or run them.

Every option that has a setting in ``opus.yaml`` also has an ``OPUS_*`` environment
variable (click's ``envvar``): the command line wins over the environment, which wins over
the config file (``default_map``), which wins over the default here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from ..state.base import DEFAULT_STATE_URL
from .completion import complete_task_names

if TYPE_CHECKING:  # generic from click 8.2 on; setup.cfg allows 8.1
    _ParamType = click.ParamType[float, Any]
else:
    _ParamType = click.ParamType


class Seconds(_ParamType):
    """A timeout in seconds: a finite number > 0 (>= 0 with ``zero``) and at most a week
    (``opus.manifest_schema.MAX_TIMEOUT``); ``inf``, ``nan`` and ``1e10`` are usage errors."""

    name = "seconds"

    def __init__(self, *, zero: bool = False) -> None:
        self.zero = zero

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        from .config import seconds

        number = value
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                self.fail(f"expected a number of seconds, got {value!r}", param, ctx)
        try:
            return seconds(number, zero=self.zero)
        except ValueError as exc:
            self.fail(f"{exc}, got {value!r}", param, ctx)


def _compose(*decorators: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def apply(func: Any) -> Any:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return apply


def _context_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Refuse a context name that breaks the name rules (click prints it, exit 2)."""
    from ..names import name_problem

    problem = None if value is None else name_problem(value)
    if problem:
        raise click.BadParameter(f"invalid context name {value!r}: {problem}")
    return value


#: --context (also used by the state commands)
context_option = click.option(
    "--context",
    "-c",
    default="default",
    show_default=True,
    envvar="OPUS_CONTEXT",
    show_envvar=True,
    callback=_context_name,
    help="Context (environment) to work in.",
)

#: -f/--file, --context, --var, --values: what a command reads its tasks and variables from
input_options = _compose(
    click.option(
        "-f",
        "--file",
        "files",
        multiple=True,
        required=True,
        metavar="PATH",
        type=click.Path(),
        help="Task manifest file or directory of *.yaml (repeatable, multi-document).",
    ),
    context_option,
    click.option(
        "--var",
        "var_pairs",
        multiple=True,
        metavar="NAME=VALUE",
        help="A user variable (repeatable; wins over values files).",
    ),
    click.option(
        "--values",
        "values_files",
        multiple=True,
        metavar="FILE",
        type=click.Path(dir_okay=False),
        envvar="OPUS_VALUES",
        show_envvar=True,
        help="A YAML values file; its contexts: section overrides per context "
        "(repeatable; the env var separates files with the path separator).",
    ),
)

#: -f/--file, --context, --var, --values, --target, --exclude, --disable-plugin
manifest_options = _compose(
    input_options,
    click.option(
        "--target",
        "targets",
        multiple=True,
        metavar="TASK",
        shell_complete=complete_task_names,
        help="Only this task and what it depends on; for delete, what depends on it (repeatable).",
    ),
    click.option(
        "--exclude",
        "excludes",
        multiple=True,
        metavar="TASK",
        shell_complete=complete_task_names,
        help="Leave out this task and what depends on it; for delete, what it depends on "
        "(repeatable).",
    ),
    click.option(
        "--disable-plugin",
        "disabled",
        multiple=True,
        metavar="NAME",
        help="Do not load this plugin.",
    ),
)

#: --state
state_option = click.option(
    "--state",
    "state_url",
    default=DEFAULT_STATE_URL,
    show_default=True,
    metavar="URL",
    envvar="OPUS_STATE",
    show_envvar=True,
    help="State backend URL (sqlite:///path, memory://, postgresql://...).",
)

#: --parallelism, --executor, --keep-going, --lock-timeout, --task-timeout, --group-limit,
#: --progress
run_options = _compose(
    click.option(
        "--parallelism",
        type=click.IntRange(min=1),
        default=10,
        show_default=True,
        envvar="OPUS_PARALLELISM",
        show_envvar=True,
        help="How many task actions may run at once.",
    ),
    click.option(
        "--executor",
        default="local",
        show_default=True,
        envvar="OPUS_EXECUTOR",
        show_envvar=True,
        help="local (threads), dask (a LocalCluster) or dask://HOST:PORT.",
    ),
    click.option(
        "--keep-going/--no-keep-going",
        default=False,
        envvar="OPUS_KEEP_GOING",
        show_envvar=True,
        help="After a failure, go on with independent tasks.",
    ),
    click.option(
        "--lock-timeout",
        type=Seconds(zero=True),
        default=0.0,
        show_default=True,
        metavar="SECONDS",
        envvar="OPUS_LOCK_TIMEOUT",
        show_envvar=True,
        help="Wait this long for another run's lock on the context (at most 604800, a week).",
    ),
    click.option(
        "--task-timeout",
        type=Seconds(),
        default=None,
        metavar="SECONDS",
        envvar="OPUS_TASK_TIMEOUT",
        show_envvar=True,
        help="Fail (and roll back) a task action running longer than this (> 0, at most "
        "604800, a week); a task's metadata.timeout wins.",
    ),
    click.option(
        "--group-limit",
        "group_limits",
        multiple=True,
        metavar="GROUP=N",
        envvar="OPUS_GROUP_LIMITS",
        show_envvar=True,
        help="At most N tasks of concurrency group GROUP at once (repeatable; the "
        "env var separates pairs with spaces).",
    ),
    click.option(
        "--progress/--no-progress",
        default=True,
        envvar="OPUS_PROGRESS",
        show_envvar=True,
        help="A live view on a terminal (plain lines otherwise or with --no-progress).",
    ),
)


def yes_option(
    help: str = "Confirm changing a protected context (needed there, and without a terminal).",
) -> Callable[[Any], Any]:
    """``--yes/-y`` (``OPUS_ASSUME_YES``): the run commands' and those that change state
    without running tasks (``state rm``, ``import``, ...), which a protected context needs."""
    return click.option(
        "--yes",
        "-y",
        "assume_yes",
        is_flag=True,
        default=False,
        envvar="OPUS_ASSUME_YES",
        show_envvar=True,
        help=help,
    )


#: ``--show-sensitive``: print output values the processor marks sensitive (``***`` otherwise)
show_sensitive_option = click.option(
    "--show-sensitive",
    is_flag=True,
    help="Show output values the processor marks sensitive (masked as *** otherwise).",
)


def output_option(*choices: str) -> Callable[[Any], Any]:
    """``--output/-o`` with the first choice as default."""
    return click.option(
        "--output",
        "-o",
        "output",
        type=click.Choice(list(choices)),
        default=choices[0],
        show_default=True,
        help="Output format on stdout (json: one object, ndjson: one event per line, "
        "markdown: a summary for a pull request); logs and progress stay on stderr.",
    )


def _more_verbose(ctx: click.Context, param: click.Parameter, value: int) -> None:
    """``-v``/``-q`` given after the command: adjust the session's verbosity and logging."""
    if not value or ctx.resilient_parsing:
        return
    from .session import Session

    session = ctx.find_object(Session)
    if session is None:
        return
    session.verbosity += value if param.name == "verbose_after" else -value
    session.configure_logging()


def verbosity_params() -> list[click.Parameter]:
    """``-v``/``-q`` for a subcommand, so ``opus drift -f x -q`` works like ``opus -q drift``."""
    return [
        click.Option(
            ["-v", "--verbose", "verbose_after"],
            count=True,
            expose_value=False,
            callback=_more_verbose,
            help="More logging (same as before the command).",
        ),
        click.Option(
            ["-q", "--quiet", "quiet_after"],
            count=True,
            expose_value=False,
            callback=_more_verbose,
            help="Less output (same as before the command).",
        ),
    ]


def add_verbosity(command: click.Command) -> click.Command:
    """Give ``command`` (and, for a group, each of its commands) ``-v``/``-q``."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            add_verbosity(sub)
        return command
    names = {opt for p in command.params for opt in getattr(p, "opts", ())}
    if "-v" not in names and "-q" not in names:
        command.params.extend(verbosity_params())
    return command
