"""``opus plugins``: what is loaded, who provides which processor, command and backend."""

from __future__ import annotations

import json

import click

from .errors import handle_errors
from .options import output_option
from .session import Session

#: Processor actions, in the order the capability column lists them.
_ACTIONS = ("create", "update", "delete", "describe", "detect_drift", "rollback")


@click.command()
@output_option("text", "json")
@click.pass_obj
@handle_errors
def plugins(session: Session, output: str) -> None:
    """List plugins (with their hooks), processors and the actions each implements,
    commands (and which plugin mapped them), state backend schemes, variable sources,
    blocked plugins, and any apiVersion two plugins claim (flagged, not fatal)."""
    from .output import print_table

    data = session.plugins().describe()
    for info in data["processors"].values():
        info["missing"] = [a for a in _ACTIONS if a not in info["actions"]]
    if output == "json":
        click.echo(json.dumps(data, default=str))
        return
    print_table(
        "plugins",
        ("name", "distribution", "version", "from", "hooks"),
        [
            (
                p["name"],
                p["distribution"] or "",
                p["version"] or "",
                p["origin"] + (f" ({p['module']})" if p["module"] else ""),
                ", ".join(p["hooks"]),
            )
            for p in data["plugins"]
        ],
    )
    print_table(
        "processors",
        ("apiVersion", "plugin", "class", "implements", "missing"),
        [
            (
                api + (" (CONFLICT)" if p["conflict"] else ""),
                p["plugin"],
                p["class"],
                ", ".join(p["actions"]),
                ", ".join(p["missing"]) or "-",
            )
            for api, p in data["processors"].items()
        ],
    )
    print_table(
        "commands",
        ("command", "action", "plugin"),
        [(command, c["action"], c["plugin"]) for command, c in data["commands"].items()],
    )
    print_table(
        "state backends",
        ("scheme", "plugin"),
        [(scheme, plugin) for scheme, plugin in data["state_backends"].items()],
    )
    print_table(
        "variable sources",
        ("prefix", "plugin"),
        [(f"${{{prefix}:...}}", plugin) for prefix, plugin in data["variable_sources"].items()],
    )
    click.echo("blocked plugins: " + (", ".join(data["disabled"]) or "(none)"))
    for message in data["conflicts"].values():
        click.echo(f"conflict: {message}")
