"""``opus import NAME -f ...``: adopt a resource that already exists."""

from __future__ import annotations

import json

import click

from .confirm import confirm_change
from .errors import handle_errors
from .options import input_options, output_option, state_option, yes_option
from .session import Session


@click.command("import")
@click.argument("name")
@input_options
@state_option
@output_option("text", "json")
@yes_option()
@click.pass_obj
@handle_errors
def import_(
    session: Session,
    name: str,
    files: tuple[str, ...],
    context: str,
    var_pairs: tuple[str, ...],
    values_files: tuple[str, ...],
    state_url: str,
    output: str,
    assume_yes: bool,
) -> None:
    """Record task NAME as applied from what exists (its processor's `read`), creating
    nothing. Refused when NAME is already in state or what exists differs from its spec."""
    from ..engine import Engine
    from ..outputs import masked_outputs
    from .inputs import combine, read_inputs

    confirm_change(session, "import", context, assume_yes)
    inputs = read_inputs(files, context, var_pairs, values_files)
    if inputs.problems:
        raise combine(inputs.problems)
    plugins = session.plugins()
    with Engine(state=state_url, plugins=plugins) as engine:
        outcome = engine.import_task(name, inputs.tasks, context, inputs.variables)
    api_version = next((t.api_version for t in inputs.tasks if t.name == name), "")
    outputs = masked_outputs(api_version, outcome.outputs, plugins.processors())
    if output == "json":
        data = {**outcome.to_dict(), "outputs": outputs}
        click.echo(json.dumps({"context": context, "tasks": {name: data}}))
        return
    click.echo(f"imported {name} into context {context}")
    for key in sorted(outputs):
        value = outputs[key]
        click.echo(f"  {key} = {value if isinstance(value, str) else json.dumps(value)}")
