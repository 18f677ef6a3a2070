"""``opus plugins``: what is loaded, who provides which processor, command and backend."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

from .errors import handle_errors
from .options import output_option
from .session import Session


@click.command()
@output_option("text", "json")
@click.pass_obj
@handle_errors
def plugins(session: Session, output: str) -> None:
    """List plugins, processors (apiVersion -> plugin), commands and state backends."""
    data = session.plugins().describe()
    if output == "json":
        click.echo(json.dumps(data))
        return
    console = Console()
    table = Table(title="plugins", title_justify="left")
    for column in ("name", "distribution", "version", "from", "hooks"):
        table.add_column(column)
    for info in data["plugins"]:
        table.add_row(info["name"], info["distribution"] or "", info["version"] or "",
                      info["origin"] + (f" ({info['module']})" if info["module"] else ""),
                      ", ".join(info["hooks"]))
    console.print(table)
    table = Table(title="processors", title_justify="left")
    for column in ("apiVersion", "plugin", "class", "actions"):
        table.add_column(column)
    for api, info in data["processors"].items():
        table.add_row(api, info["plugin"], info["class"], ", ".join(info["actions"]))
    console.print(table)
    table = Table(title="commands", title_justify="left")
    for column in ("command", "action", "plugin"):
        table.add_column(column)
    for command, info in data["commands"].items():
        table.add_row(command, info["action"], info["plugin"])
    console.print(table)
    console.print("state backends: " + ", ".join(
        f"{scheme} ({plugin})" for scheme, plugin in data["state_backends"].items()))
    if data["disabled"]:
        console.print("disabled: " + ", ".join(data["disabled"]))
