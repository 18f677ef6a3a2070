"""The ``opus`` group: fixed subcommands plus one subcommand per mapped command."""

from __future__ import annotations

import sys
from typing import Any

import click

from ..errors import OpusError
from .errors import EXIT_USAGE
from .session import Session

#: Subcommands that are not commands of the command map.
_FIXED = ("plugins", "validate", "graph", "state", "runs")


class OpusGroup(click.Group):
    """Adds a run subcommand for every command in the (plugin-extended) command map."""

    def _command_map(self, ctx: click.Context) -> dict[str, str]:
        session = ctx.ensure_object(Session)
        # click resolves the subcommand before it calls the group callback, so the group's
        # plugin options must reach the session here, before plugins are loaded and cached.
        if not session.plugin_modules:
            session.plugin_modules = list(ctx.params.get("plugin_modules") or ())
        session.disable(list(ctx.params.get("disabled") or ()))
        try:
            return session.plugins().command_map()
        except OpusError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_USAGE)
            raise  # unreachable

    def list_commands(self, ctx: click.Context) -> list[str]:
        fixed = super().list_commands(ctx)
        return fixed + sorted(c for c in self._command_map(ctx) if c not in fixed)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is not None:
            return command
        commands = self._command_map(ctx)
        if name in commands:
            from .run_cmd import make_run_command

            return make_run_command(name, commands[name])
        return None


@click.group(cls=OpusGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug and tracebacks).")
@click.option("-q", "--quiet", count=True, help="Less output.")
@click.option(
    "--disable-plugin", "disabled", multiple=True, metavar="NAME",
    help="Do not load this plugin (entry-point or distribution name). Env: OPUS_DISABLE_PLUGINS.",
)
@click.option(
    "-p", "--plugin", "plugin_modules", multiple=True, metavar="MODULE",
    help="Also load this module as a plugin (like pytest -p). Env: OPUS_PLUGINS.",
)
@click.version_option(package_name="opus", prog_name="opus")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: int, disabled: tuple[str, ...],
        plugin_modules: tuple[str, ...]) -> None:
    """Process declarative tasks with pluggable processors.

    Run `opus COMMAND -f tasks.yaml --context dev` with one of the commands below.
    """
    session = ctx.ensure_object(Session)
    session.verbosity = verbose - quiet
    session.disable(list(disabled))
    session.plugin_modules = list(plugin_modules)
    session.configure_logging()


def _register_fixed() -> None:
    from . import inspect_cmd, plugins_cmd, state_cmd

    cli.add_command(plugins_cmd.plugins)
    cli.add_command(inspect_cmd.validate)
    cli.add_command(inspect_cmd.graph)
    cli.add_command(state_cmd.state)
    cli.add_command(state_cmd.runs)


_register_fixed()


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point."""
    return cli.main(args=argv, prog_name="opus", obj=Session())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
