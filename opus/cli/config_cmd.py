"""``opus config``: the effective settings of a run command and where each comes from."""

from __future__ import annotations

import json
from typing import Any

import click

from .errors import handle_errors
from .options import output_option
from .session import Session

#: How click names a value's origin, as ``opus config`` shows it.
_SOURCES = {
    "COMMANDLINE": "command line",
    "ENVIRONMENT": "environment",
    "DEFAULT_MAP": "config file",
    "DEFAULT": "default",
}


def effective_settings(ctx: click.Context, command: str) -> dict[str, dict[str, Any]]:
    """``{setting: {"value": ..., "source": ..., "envvar": ...}}`` for ``opus COMMAND``."""
    from .config import SETTINGS
    from .run_cmd import make_run_command

    group = ctx.find_root()
    action = ctx.ensure_object(Session).plugins().command_map().get(command, command)
    cmd = make_run_command(command, action)
    sub = cmd.make_context(command, [], parent=group, resilient_parsing=True)
    out: dict[str, dict[str, Any]] = {}
    for key, setting in SETTINGS.items():
        if setting.group_level:
            continue
        param = next(p for p in cmd.params if p.name == setting.param)
        source = sub.get_parameter_source(setting.param)
        value = sub.params.get(setting.param)
        out[key] = {
            "value": list(value) if isinstance(value, tuple) else value,
            "source": _SOURCES.get(source.name if source else "DEFAULT", "default"),
            "envvar": getattr(param, "envvar", None),
        }
    return out


@click.command()
@click.option(
    "--command",
    "command",
    default="apply",
    show_default=True,
    help="Show the settings of this run command.",
)
@output_option("text", "json")
@click.pass_context
@handle_errors
def config(ctx: click.Context, command: str, output: str) -> None:
    """Show the effective settings (command line > OPUS_* env > config file > default)."""
    session = ctx.ensure_object(Session)
    path = session.config.path if session.config is not None else None
    settings = effective_settings(ctx, command)
    if output == "json":
        click.echo(
            json.dumps(
                {
                    "config_file": str(path) if path else None,
                    "command": command,
                    "settings": settings,
                    "plugin_config": session.plugin_config,
                },
                default=str,
            )
        )
        return
    click.echo(f"config file: {path or '(none)'}")
    width = max(len(k) for k in settings)
    for key, info in settings.items():
        value = info["value"]
        shown = json.dumps(value) if not isinstance(value, str) else value
        click.echo(f"{key.ljust(width)}  {shown}  ({info['source']}; env {info['envvar']})")
    for name, section in session.plugin_config.items():
        click.echo(f"plugin_config.{name}  {json.dumps(section, default=str)}  (config file)")
