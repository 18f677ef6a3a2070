"""The ``opus`` group: fixed subcommands plus one subcommand per mapped command."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from ..errors import OpusError
from .errors import early_error, error_boundary
from .session import Session

#: Subcommands that are not commands of the command map, as ``name: (module, attribute)``:
#: each module is imported when its command is used (or listed, by ``--help``), not at start.
_FIXED: dict[str, tuple[str, str]] = {
    "plugins": ("plugins_cmd", "plugins"),
    "validate": ("inspect_cmd", "validate"),
    "graph": ("inspect_cmd", "graph"),
    "config": ("config_cmd", "config"),
    "state": ("state_cmd", "state"),
    "runs": ("state_cmd", "runs"),
    "init-plugin": ("init_plugin_cmd", "init_plugin"),
    "schema": ("schema_cmd", "schema"),
    "output": ("output_cmd", "output"),
    "import": ("import_cmd", "import_"),
}
#: Fixed subcommands that are groups themselves (their commands share config defaults).
_NESTED = frozenset({"state", "runs"})


def configure_session(ctx: click.Context) -> Session:
    """Apply the group's options and the config file to the session, once.

    Called from the group callback and, earlier, from :meth:`OpusGroup._command_map`:
    click resolves a run subcommand (which loads plugins for the command map) *before*
    it calls the group callback, so ``-p``/``--disable-plugin`` must be applied here
    first or ``opus -p MODULE apply`` would run without MODULE's processors.
    """
    from .config import load_config

    session = ctx.ensure_object(Session)
    if session.ready:
        return session
    session.ready = True
    params = ctx.params
    session.verbosity = params.get("verbose", 0) - params.get("quiet", 0)
    session.configure_logging()
    config = load_config(params.get("config_path"))
    session.config = config
    group = config.params(group_level=True)
    disabled = tuple(params.get("disabled") or ())
    plugin_modules = tuple(params.get("plugin_modules") or ())
    if not disabled and not os.environ.get("OPUS_DISABLE_PLUGINS", "").strip():
        disabled = tuple(group.get("disabled", ()))
    if not plugin_modules and not os.environ.get("OPUS_PLUGINS", "").strip():
        plugin_modules = tuple(group.get("plugin_modules", ()))
    session.disable(list(disabled))
    session.plugin_modules = list(plugin_modules)
    session.plugin_config = dict(config.plugin_config)
    if config.values and ctx.default_map is None:
        ctx.default_map = config.default_map(_NESTED)
    return session


class OpusGroup(click.Group):
    """Adds a run subcommand for every command in the (plugin-extended) command map, and
    reports every error in one line (exit 2 for an :class:`OpusError`)."""

    def _command_map(self, ctx: click.Context) -> dict[str, str]:
        if ctx.resilient_parsing:  # shell completion: never fail, never print
            try:
                return configure_session(ctx).plugins().command_map()
            except Exception:
                return {}
        return configure_session(ctx).plugins().command_map()

    def _plugin_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        from .plugin_commands import plugin_commands

        reserved = {*super().list_commands(ctx), *_FIXED, *self._command_map(ctx)}
        if ctx.resilient_parsing:
            try:
                return plugin_commands(configure_session(ctx), reserved)
            except Exception:
                return {}
        return plugin_commands(configure_session(ctx), reserved)

    def list_commands(self, ctx: click.Context) -> list[str]:
        fixed = sorted({*super().list_commands(ctx), *_FIXED})
        mapped = sorted(c for c in self._command_map(ctx) if c not in fixed)
        return fixed + mapped + sorted(self._plugin_commands(ctx))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is not None:
            return command
        if name in _FIXED:
            return self._fixed(name)
        commands = self._command_map(ctx)
        if name in commands:
            from .run_cmd import make_run_command

            return make_run_command(name, commands[name])
        return self._plugin_commands(ctx).get(name)

    def get_help_option(self, ctx: click.Context) -> click.Option | None:
        """``--help``, read after ``-p``/``--disable-plugin``/``--config`` (eager) wherever it
        stands, so the commands it lists are those of the plugins the command line asks for."""
        option = super().get_help_option(ctx)
        if option is not None:
            option.is_eager = False
        return option

    def _fixed(self, name: str) -> click.Command:
        """The fixed subcommand ``name``, imported and added on first use."""
        from .options import add_verbosity

        module, attribute = _FIXED[name]
        command = getattr(importlib.import_module(f".{module}", __package__), attribute)
        self.add_command(add_verbosity(command), name)
        return command  # type: ignore[no-any-return]

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except OpusError as exc:  # plugins failed to load: -o json/ndjson still get it
            early_error(exc, args)
            raise
        except click.UsageError as exc:
            # click >= 8.4 suggests close names, from the commands added so far: offer all
            unknown = getattr(click.exceptions, "NoSuchCommand", None)
            if unknown is None or not isinstance(exc, unknown):
                raise
            raise unknown(
                exc.command_name, possibilities=self.list_commands(ctx), ctx=ctx
            ) from None

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        with error_boundary():
            return super().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        with error_boundary():
            return super().invoke(ctx)


@click.group(cls=OpusGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="More logging on stderr (-v info and tracebacks, -vv debug).",
)
@click.option(
    "-q",
    "--quiet",
    count=True,
    help="Less output (-q: no table or progress, -qq: nothing but errors).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="OPUS_CONFIG",
    show_envvar=True,
    metavar="FILE",
    is_eager=True,
    help="Config file (default: ./opus.yaml, or [tool.opus] in ./pyproject.toml).",
)
@click.option(
    "--disable-plugin",
    "disabled",
    multiple=True,
    metavar="NAME",
    is_eager=True,  # read before --help, which lists the commands plugins add
    help="Do not load this plugin (entry-point or distribution name). Env: OPUS_DISABLE_PLUGINS.",
)
@click.option(
    "-p",
    "--plugin",
    "plugin_modules",
    multiple=True,
    metavar="MODULE",
    is_eager=True,
    help="Also load this module as a plugin (like pytest -p). Env: OPUS_PLUGINS.",
)
@click.version_option(package_name="opus", prog_name="opus")
@click.pass_context
def cli(
    ctx: click.Context,
    verbose: int,
    quiet: int,
    config_path: str | None,
    disabled: tuple[str, ...],
    plugin_modules: tuple[str, ...],
) -> None:
    """Process declarative tasks with pluggable processors.

    Run `opus COMMAND -f tasks.yaml --context dev` with one of the commands below.
    Settings: command line > OPUS_* environment > opus.yaml > defaults (see `opus config`).
    Shell completion: eval "$(_OPUS_COMPLETE=bash_source opus)" (or zsh_source, fish_source).
    """
    configure_session(ctx)


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point."""
    return cli.main(args=argv, prog_name="opus", obj=Session())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
