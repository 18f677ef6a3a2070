"""``opus config``: the effective settings of a run command and where each comes from."""

from __future__ import annotations

import json
import os
from typing import Any

import click

from .. import parsecache
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
    session = group.ensure_object(Session)
    cache = parsecache.settings(session.config.values if session.config is not None else None)
    for key, setting in SETTINGS.items():
        if setting.group_level:
            out[key] = _group_setting(group, key, setting.param)
            continue
        if key in cache:  # the manifest parse cache: config file or environment
            out[key] = cache[key]
            continue
        param = next((p for p in cmd.params if p.name == setting.param), None)
        if param is None:  # a setting only the config file gives (``protected``)
            session = group.ensure_object(Session)
            given = session.config.values.get(key) if session.config is not None else None
            out[key] = {
                "value": list(given or []),
                "source": "config file" if given is not None else "default",
                "envvar": None,
            }
            continue
        source = sub.get_parameter_source(setting.param)
        value = sub.params.get(setting.param)
        out[key] = {
            "value": list(value) if isinstance(value, tuple) else value,
            "source": _SOURCES.get(source.name if source else "DEFAULT", "default"),
            "envvar": getattr(param, "envvar", None),
        }
    return out


#: Group-level list settings: the environment variable that adds to the command line.
_GROUP_ENV = {"disable_plugins": "OPUS_DISABLE_PLUGINS", "plugins": "OPUS_PLUGINS"}


def _group_setting(group: click.Context, key: str, param: str) -> dict[str, Any]:
    """A setting of ``opus`` itself (``plugins``, ``disable_plugins``): the command line and
    the environment are combined; the config file counts only when neither gives any."""
    envvar = _GROUP_ENV[key]
    given = list(group.params.get(param) or ())
    from_env = [n.strip() for n in os.environ.get(envvar, "").split(",") if n.strip()]
    session = group.ensure_object(Session)
    from_file = session.config.values.get(key) if session.config is not None else None
    if given or from_env:
        sources = (["command line"] if given else []) + (["environment"] if from_env else [])
        value, source = given + from_env, " + ".join(sources)
    elif from_file:
        value, source = list(from_file), "config file"
    else:
        value, source = [], "default"
    return {"value": value, "source": source, "envvar": envvar}


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
        env = f"; env {info['envvar']}" if info["envvar"] else ""
        click.echo(f"{key.ljust(width)}  {shown}  ({info['source']}{env})")
    for name, section in session.plugin_config.items():
        click.echo(f"plugin_config.{name}  {json.dumps(section, default=str)}  (config file)")
