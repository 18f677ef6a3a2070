"""Options shared by the commands that read task manifests."""

from __future__ import annotations

import os
from typing import Any, Callable

import click

from ..errors import ConfigError
from ..manifest import load_tasks
from ..model import Task
from ..state.base import DEFAULT_STATE_URL
from ..variables import load_values, parse_assignments


def _compose(*decorators: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def apply(func: Any) -> Any:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return apply


#: -f/--file, --context, --var, --values, --target, --exclude
manifest_options = _compose(
    click.option(
        "-f", "--file", "files", multiple=True, required=True, metavar="PATH",
        help="Task manifest file or directory of *.yaml (repeatable, multi-document).",
    ),
    click.option(
        "--context", "-c", default=lambda: os.environ.get("OPUS_CONTEXT", "default"),
        show_default="default", help="Context (environment) to run in. Env: OPUS_CONTEXT.",
    ),
    click.option("--var", "var_pairs", multiple=True, metavar="NAME=VALUE",
                 help="A user variable (repeatable)."),
    click.option("--values", "values_files", multiple=True, metavar="FILE",
                 help="A YAML values file; its contexts: section overrides per context."),
    click.option("--target", "targets", multiple=True, metavar="TASK",
                 help="Only this task and what it depends on (repeatable)."),
    click.option("--exclude", "excludes", multiple=True, metavar="TASK",
                 help="Leave out this task and what depends on it (repeatable)."),
    click.option("--disable-plugin", "disabled", multiple=True, metavar="NAME",
                 help="Do not load this plugin."),
)

#: --state, --output
state_option = click.option(
    "--state", "state_url", default=lambda: os.environ.get("OPUS_STATE", DEFAULT_STATE_URL),
    show_default=DEFAULT_STATE_URL, metavar="URL",
    help="State backend URL (sqlite:///path, memory://, postgresql://...). Env: OPUS_STATE.",
)


def output_option(*choices: str) -> Callable[[Any], Any]:
    return click.option(
        "--output", "-o", "output", type=click.Choice(list(choices)), default=choices[0],
        show_default=True, help="Output format (json on stdout; logs stay on stderr).",
    )


def read_inputs(
    files: tuple[str, ...], context: str, var_pairs: tuple[str, ...], values_files: tuple[str, ...]
) -> tuple[list[Task], dict[str, Any]]:
    """Load manifests and variables: values files in order, then --var on top."""
    variables: dict[str, Any] = {}
    for path in values_files:
        variables.update(load_values(path, context))
    variables.update(parse_assignments(var_pairs))
    if not files:
        raise ConfigError("no task manifests given (use -f PATH)")
    return load_tasks(files), variables
