"""The CLI side of the plugin platform: plugin subcommands, plugin_config, conflicts."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from helpers_cli import run_opus, write_manifest


def run(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m opus ARGS`` in ``workdir`` (modules written there importable)."""
    return run_opus(workdir, *args, plugins=())


PLUGIN = '''
import click
from opus import TaskProcessor, hookimpl

SETTINGS = {}


@hookimpl
def opus_configure(plugin_config):
    SETTINGS.update(plugin_config.get("greeter", {}))


@hookimpl
def opus_cli_commands(cli):
    @cli.command("greet-all")
    @click.option("--name", default="world")
    def greet_all(name):
        """Greet someone (added by a plugin)."""
        click.echo(f"{SETTINGS.get('greeting', 'hello')}, {name}!")

    @cli.command("plugins")
    def hijack():
        click.echo("hijacked")


class One(TaskProcessor):
    api_version = "shared/v1"

    def create(self, task, ctx):
        return {}


@hookimpl
def opus_register_processors():
    return [One]
'''

RIVAL = """
from opus import TaskProcessor, hookimpl


class Two(TaskProcessor):
    api_version = "shared/v1"

    def create(self, task, ctx):
        return {}


class Solo(TaskProcessor):
    api_version = "solo/v1"

    def create(self, task, ctx):
        return {}


@hookimpl
def opus_register_processors():
    return [Two, Solo]
"""


def test_plugin_adds_a_subcommand_configured_from_opus_yaml(tmp_path: Path) -> None:
    (tmp_path / "greeter.py").write_text(PLUGIN)
    out = run(tmp_path, "-p", "greeter", "greet-all", "--name", "Ada")
    assert (out.returncode, out.stdout) == (0, "hello, Ada!\n"), out.stderr
    (tmp_path / "opus.yaml").write_text(
        "plugins: [greeter]\nplugin_config:\n  greeter: {greeting: Howdy}\n"
    )
    out = run(tmp_path, "greet-all")
    assert (out.returncode, out.stdout) == (0, "Howdy, world!\n"), out.stderr
    helped = run(tmp_path, "--help")
    assert "greet-all" in helped.stdout and "Greet someone" in helped.stdout
    # a plugin cannot replace one of opus' own commands
    assert "a plugin's command 'plugins' is ignored" in helped.stderr
    listed = run(tmp_path, "plugins", "-o", "json")
    assert listed.returncode == 0 and "hijacked" not in listed.stdout
    shown = run(tmp_path, "config", "-o", "json")
    assert json.loads(shown.stdout)["plugin_config"] == {"greeter": {"greeting": "Howdy"}}
    text = run(tmp_path, "config")
    assert 'plugin_config.greeter  {"greeting": "Howdy"}  (config file)' in text.stdout


def test_bad_plugin_config_is_refused_with_exit_2(tmp_path: Path) -> None:
    (tmp_path / "opus.yaml").write_text("plugin_config:\n  greeter: [1, 2]\n")
    out = run(tmp_path, "plugins")
    assert (
        out.returncode == 2
        and "key 'plugin_config': expected a mapping of plugin name" in out.stderr
    )
    assert "Traceback" not in out.stderr


def test_plugins_lists_everything_and_flags_a_conflict(tmp_path: Path) -> None:
    (tmp_path / "greeter.py").write_text(PLUGIN)
    (tmp_path / "rival.py").write_text(RIVAL)
    listed = run(tmp_path, "-p", "greeter", "-p", "rival", "plugins", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    message = data["conflicts"]["shared/v1"]
    assert "'greeter'" in message and "'rival'" in message
    assert data["processors"]["solo/v1"]["conflict"] is None
    assert data["variable_sources"] == {"ENV": "builtin-variables"}
    text = run(tmp_path, "-p", "greeter", "-p", "rival", "plugins")
    assert "shared/v1 (CONFLICT)" in text.stdout and f"conflict: {message}" in text.stdout

    write_manifest(
        tmp_path / "t.yaml",
        [{"apiVersion": "shared/v1", "kind": "X", "metadata": {"name": "a"}, "spec": {}}],
    )
    applied = run(tmp_path, "-p", "greeter", "-p", "rival", "apply", "-f", "t.yaml")
    assert applied.returncode == 2 and "claimed by two processors" in applied.stderr


def test_help_lists_the_commands_of_the_plugins_the_command_line_names(tmp_path: Path) -> None:
    """-p, --disable-plugin and --config are read before --help, wherever it stands."""
    (tmp_path / "greeter.py").write_text(PLUGIN)
    assert "greet-all" not in run(tmp_path, "--help").stdout
    for args in (("-p", "greeter", "--help"), ("--help", "-p", "greeter"), ("-h", "-p", "greeter")):
        helped = run(tmp_path, *args)
        assert helped.returncode == 0 and "Greet someone (added by a plugin)" in helped.stdout, args
    (tmp_path / "other.yaml").write_text("plugins: [greeter]\n")
    assert "greet-all" in run(tmp_path, "--help", "--config", "other.yaml").stdout
    (tmp_path / "opus.yaml").write_text("plugins: [greeter]\n")
    assert "greet-all" in run(tmp_path, "--help").stdout
    hidden = run(tmp_path, "--help", "--disable-plugin", "greeter")
    assert hidden.returncode == 0 and "greet-all" not in hidden.stdout
    gone = run(tmp_path, "--disable-plugin", "greeter", "greet-all")
    assert gone.returncode == 2 and "No such command 'greet-all'" in gone.stderr
