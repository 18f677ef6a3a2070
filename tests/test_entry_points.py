"""Entry-point discovery for real: a plugin package pip-installed into a fresh venv."""

from __future__ import annotations

import json
import os
import subprocess
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

PLUGIN_SETUP = """\
[metadata]
name = opus-greeter
version = 0.3.0

[options]
py_modules = opus_greeter
install_requires = opus

[options.entry_points]
opus =
    greeter = opus_greeter
"""

PLUGIN_MODULE = """\
from pathlib import Path

import click

from opus import Result, TaskProcessor, hookimpl
from opus.executors import ThreadExecutor

SETTINGS = {"punctuation": "!"}


class Greeter(TaskProcessor):
    api_version = "greeter/v1"

    def create(self, task, ctx):
        path = Path(ctx.spec["path"])
        salutation = ctx.spec.get("salutation", "Hello")
        path.write_text(f"{salutation}, {ctx.spec['who']}{SETTINGS['punctuation']}")
        return Result(outputs={"path": str(path), "greeting": path.read_text()})

    update = create


class LoggingExecutor(ThreadExecutor):
    name = "greeter-threads"

    def submit(self, task, ctx):
        with open("executor.log", "a") as log:
            log.write(f"{task.name}:{ctx.action}\\n")
        return super().submit(task, ctx)


@hookimpl
def opus_register_processors():
    return [Greeter]


@hookimpl
def opus_command_map():
    return {"greet": "apply"}


@hookimpl
def opus_configure(plugin_config):
    SETTINGS.update(plugin_config.get("greeter", {}))


@hookimpl
def opus_variable_sources():
    phrases = {"salutation": "Howdy", "farewell": "Bye"}
    return {"PHRASE": lambda key: phrases[key]}


@hookimpl
def opus_executor(url):
    return LoggingExecutor() if url == "greeter-threads" else None


@hookimpl
def opus_cli_commands(cli):
    @cli.command("greeter-info")
    def info():
        \"\"\"Show the greeter plugin's settings.\"\"\"
        click.echo(f"punctuation={SETTINGS['punctuation']}")
"""

TASKS = """\
apiVersion: greeter/v1
kind: Greeting
metadata: {name: hi}
spec: {path: hi.txt, who: "${VAR:who}"}
---
apiVersion: greeter/v1
kind: Greeting
metadata: {name: echo}
spec: {path: echo.txt, who: "${VAR:hi:greeting} again"}
"""


@pytest.fixture(scope="module")
def plugin_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ep")
    package = root / "opus-greeter"
    package.mkdir()
    (package / "setup.cfg").write_text(PLUGIN_SETUP)
    (package / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=64", "wheel"]\n'
        'build-backend = "setuptools.build_meta"\n'
    )
    (package / "opus_greeter.py").write_text(PLUGIN_MODULE)
    env_dir = root / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "-e",
            str(REPO),
            str(package),
            "pytest",  # for the tests of a package made by `opus init-plugin`
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    return env_dir


def opus(env_dir: Path, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OPUS_", "PYTHON"))}
    environ.update(env)
    return subprocess.run(
        [str(env_dir / "bin" / "opus"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
    )


@pytest.mark.slow
def test_installed_plugin_is_discovered_listed_and_runs(plugin_venv: Path, tmp_path: Path) -> None:
    listed = opus(plugin_venv, "plugins", "--output", "json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    greeter = [p for p in data["plugins"] if p["name"] == "greeter"][0]
    assert greeter["distribution"] == "opus-greeter" and greeter["version"] == "0.3.0"
    assert greeter["origin"] == "entry point"
    assert "opus_register_processors" in greeter["hooks"]
    assert data["processors"]["greeter/v1"]["plugin"] == "greeter"
    assert data["commands"]["greet"] == {"action": "apply", "plugin": "greeter"}

    (tmp_path / "tasks.yaml").write_text(TASKS)
    greet = ["greet", "-f", "tasks.yaml", "--var", "who=world", "--context", "test", "-o", "json"]
    run = opus(plugin_venv, *greet, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["command"] == "greet" and result["action"] == "apply" and result["ok"]
    assert (tmp_path / "echo.txt").read_text() == "Hello, Hello, world! again!"
    assert (tmp_path / ".opus" / "state.db").exists()  # the default SQLite state

    again = opus(plugin_venv, *greet, cwd=tmp_path)
    assert {t["status"] for t in json.loads(again.stdout)["tasks"].values()} == {"unchanged"}


@pytest.mark.slow
def test_installed_plugin_can_be_disabled(plugin_venv: Path, tmp_path: Path) -> None:
    for args, env in (
        (["--disable-plugin", "greeter", "plugins", "-o", "json"], {}),
        (["plugins", "-o", "json"], {"OPUS_DISABLE_PLUGINS": "opus-greeter"}),
    ):
        listed = opus(plugin_venv, *args, cwd=tmp_path, **env)
        data = json.loads(listed.stdout)
        assert "greeter/v1" not in data["processors"] and "greet" not in data["commands"]
    (tmp_path / "tasks.yaml").write_text(TASKS)
    run = opus(
        plugin_venv,
        "--disable-plugin",
        "greeter",
        "apply",
        "-f",
        "tasks.yaml",
        "--var",
        "who=x",
        cwd=tmp_path,
    )
    assert run.returncode == 2 and "no processor for apiVersion 'greeter/v1'" in run.stderr
    assert "Traceback" not in run.stderr


PLATFORM_TASKS = """\
apiVersion: greeter/v1
kind: Greeting
metadata: {name: hi}
spec: {path: hi.txt, who: "${VAR:who}", salutation: "${PHRASE:salutation}"}
---
apiVersion: greeter/v1
kind: Greeting
metadata: {name: bye}
spec: {path: bye.txt, who: "${VAR:hi:path}", salutation: "${PHRASE: farewell }"}
"""


@pytest.mark.slow
def test_installed_plugin_uses_every_platform_hook(plugin_venv: Path, tmp_path: Path) -> None:
    """Variable source, executor, CLI command and plugin_config, from a pip-installed plugin."""
    (tmp_path / "opus.yaml").write_text("plugin_config:\n  greeter: {punctuation: '?'}\n")
    (tmp_path / "tasks.yaml").write_text(PLATFORM_TASKS)
    info = opus(plugin_venv, "greeter-info", cwd=tmp_path)
    assert (info.returncode, info.stdout) == (0, "punctuation=?\n"), info.stderr
    assert "greeter-info" in opus(plugin_venv, "--help", cwd=tmp_path).stdout

    listed = json.loads(opus(plugin_venv, "plugins", "-o", "json", cwd=tmp_path).stdout)
    assert listed["variable_sources"]["PHRASE"] == "greeter"
    greeter = [p for p in listed["plugins"] if p["name"] == "greeter"][0]
    assert {"opus_executor", "opus_variable_sources", "opus_cli_commands", "opus_configure"} <= set(
        greeter["hooks"]
    )

    args = ["apply", "-f", "tasks.yaml", "--var", "who=Ada", "--executor", "greeter-threads"]
    run = opus(plugin_venv, *args, "-o", "json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "hi.txt").read_text() == "Howdy, Ada?"
    assert (tmp_path / "bye.txt").read_text() == "Bye, hi.txt?"  # ran after hi: a dependency
    assert (tmp_path / "executor.log").read_text().splitlines() == ["hi:create", "bye:create"]

    (tmp_path / "broken.yaml").write_text(PLATFORM_TASKS.replace("farewell", "nope"))
    failed = opus(plugin_venv, "apply", "-f", "broken.yaml", "--var", "who=Ada", cwd=tmp_path)
    assert failed.returncode == 1
    assert "task 'bye', spec.salutation: PHRASE source has no value for 'nope'" in (
        failed.stdout + failed.stderr
    )


@pytest.mark.slow
def test_init_plugin_package_installs_passes_its_tests_and_applies(
    plugin_venv: Path, tmp_path: Path
) -> None:
    made = opus(plugin_venv, "init-plugin", "kv-note", "--dir", str(tmp_path / "src"), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    package = tmp_path / "src" / "opus-kv-note"
    install = subprocess.run(
        [str(plugin_venv / "bin" / "python"), "-m", "pip", "install", "-q", str(package)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    tests = subprocess.run(
        [str(plugin_venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=package,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "9 passed, 1 skipped" in tests.stdout  # the contract, plus the path check

    listed = json.loads(opus(plugin_venv, "plugins", "-o", "json", cwd=tmp_path).stdout)
    note = [p for p in listed["plugins"] if p["name"] == "kv-note"][0]
    assert (note["distribution"], note["origin"]) == ("opus-kv-note", "entry point")
    assert listed["processors"]["kv-note/v1"]["plugin"] == "kv-note"

    run = opus(plugin_venv, "apply", "-f", str(package / "examples" / "tasks.yaml"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "out" / "hello.txt").read_text() == "Hello from opus-kv-note"
