"""``opus output NAME [KEY]``: a task's recorded outputs."""

from __future__ import annotations

import json
from typing import Any

import click

from .errors import handle_errors
from .options import context_option, output_option, show_sensitive_option, state_option
from .session import Session


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


@click.command("output")
@click.argument("name")
@click.argument("key", required=False)
@context_option
@state_option
@output_option("text", "json")
@show_sensitive_option
@click.pass_obj
@handle_errors
def output(
    session: Session,
    name: str,
    key: str | None,
    context: str,
    state_url: str,
    output: str,
    show_sensitive: bool,
) -> None:
    """Print the outputs recorded for task NAME (or only its output KEY).

    Text: one `key = value` line per output; with KEY the bare value (for scripts).
    """
    from ..outputs import output_value, recorded_outputs
    from .state_cmd import open_state

    plugins = session.plugins()
    with open_state(session, state_url) as backend:
        outputs = recorded_outputs(
            backend, plugins.processors(), context, name, show_sensitive=show_sensitive
        )
    if key is not None:
        value = output_value(outputs, name, key)
        click.echo(json.dumps(value, default=str) if output == "json" else _text(value))
        return
    if output == "json":
        click.echo(json.dumps(outputs, default=str))
        return
    for k in sorted(outputs):
        click.echo(f"{k} = {_text(outputs[k])}")
