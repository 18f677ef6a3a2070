"""Errors: one clear line and exit 2 for user mistakes (group level included), a short
message and a hint for bugs, usage errors exit 2, and shell completion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers_cli import hello, run_opus, write_manifest


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["-p", "no_such_module", "plugins"],
            "error: --plugin no_such_module: cannot import module",
        ),
        (["-p", "no_such_module", "apply", "-f", "t.yaml"], "error: --plugin no_such_module"),
        (
            ["--disable-plugin", "builtin-commands", "plugins"],
            "error: plugin(s) builtin-commands cannot",
        ),
        (["apply", "-f", "t.yaml", "--state", "bogus"], "error: invalid state URL 'bogus'"),
        (
            ["apply", "-f", "t.yaml", "--state", "nosuch://x"],
            "error: no state backend for 'nosuch://x'",
        ),
        (
            ["apply", "-f", "t.yaml", "--state", "memory://", "--group-limit", "db"],
            "error: --group-limit 'db': expected GROUP=N",
        ),
    ],
)
def test_opus_errors_are_one_line_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    write_manifest(tmp_path / "t.yaml", [hello("a")])
    result = run_opus(tmp_path, *args)
    assert result.returncode == 2, result
    assert result.stderr.startswith(message) and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr and result.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ["launch"],
        ["apply"],
        ["apply", "-f", "t.yaml", "--parallelism", "0"],
        ["graph", "-f", "t.yaml", "--format", "png"],
        ["--bogus-flag", "plugins"],
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str]) -> None:
    write_manifest(tmp_path / "t.yaml", [hello("a")])
    result = run_opus(tmp_path, *args)
    assert result.returncode == 2 and "Usage:" in result.stderr and "Traceback" not in result.stderr


def test_unexpected_errors_are_short_with_a_hint_and_a_traceback_with_v(tmp_path: Path) -> None:
    # a plugin's hook that raises is a bug, not a user mistake: exit 1, short, -v shows it
    (tmp_path / "buggy_plugin.py").write_text(
        "from opus import hookimpl\n\n@hookimpl\ndef opus_variable_sources():\n"
        "    raise RuntimeError('kaboom in a hook')\n"
    )
    result = run_opus(tmp_path, "-p", "buggy_plugin", "plugins")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "unexpected error: RuntimeError: kaboom in a hook",
        "(a bug or an environment problem; rerun with -v for the traceback)",
    ]
    verbose = run_opus(tmp_path, "-v", "-p", "buggy_plugin", "plugins")
    assert verbose.returncode == 1 and "Traceback (most recent call last)" in verbose.stderr
    assert verbose.stderr.splitlines()[-1] == "unexpected error: RuntimeError: kaboom in a hook"


def test_a_plugin_module_that_fails_at_import_is_named(tmp_path: Path) -> None:
    (tmp_path / "broken_plugin.py").write_text("raise RuntimeError('kaboom at import')\n")
    result = run_opus(tmp_path, "-p", "broken_plugin", "plugins")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: cannot load plugin module 'broken_plugin' (--plugin): "
        "RuntimeError: kaboom at import"
    )
    verbose = run_opus(tmp_path, "-v", "-p", "broken_plugin", "plugins")
    assert verbose.returncode == 2 and "Traceback (most recent call last)" in verbose.stderr


def test_help_and_version(tmp_path: Path) -> None:
    result = run_opus(tmp_path, "--help")
    assert result.returncode == 0
    for name in (
        "plugins",
        "validate",
        "graph",
        "config",
        "state",
        "runs",
        "apply",
        "plan",
        "drift",
    ):
        assert f"  {name} " in result.stdout
    assert run_opus(tmp_path, "--version").stdout.startswith("opus, version ")
    plan_help = run_opus(tmp_path, "plan", "--help").stdout
    assert "--destroy" in plan_help and "OPUS_STATE" in plan_help


def test_shell_completion_knows_dynamic_commands_and_task_names(tmp_path: Path) -> None:
    write_manifest(tmp_path / "t.yaml", [hello("alpha"), hello("beta")])
    source = run_opus(tmp_path, env={"_OPUS_COMPLETE": "bash_source"})
    assert source.returncode == 0 and "_opus_completion" in source.stdout
    words = run_opus(
        tmp_path,
        env={"_OPUS_COMPLETE": "bash_complete", "COMP_WORDS": "opus ap", "COMP_CWORD": "1"},
    )
    assert "plain,apply" in words.stdout.splitlines()
    words = run_opus(
        tmp_path,
        env={
            "_OPUS_COMPLETE": "bash_complete",
            "COMP_WORDS": "opus plan -f t.yaml --target ",
            "COMP_CWORD": "5",
        },
    )
    assert {"plain,alpha", "plain,beta"} <= set(words.stdout.splitlines())
    words = run_opus(
        tmp_path,
        env={"_OPUS_COMPLETE": "bash_complete", "COMP_WORDS": "opus -p nope a", "COMP_CWORD": "3"},
    )
    assert words.returncode == 0 and "Traceback" not in words.stderr


def test_plugins_lists_everything(tmp_path: Path) -> None:
    (tmp_path / "mapper.py").write_text(
        "import opus\n\n@opus.hookimpl\ndef opus_command_map():\n    return {'deploy': 'apply'}\n"
    )
    data = json.loads(
        run_opus(
            tmp_path, "-p", "mapper", "--disable-plugin", "file", "plugins", "-o", "json"
        ).stdout
    )
    names = {p["name"]: p for p in data["plugins"]}
    assert names["hello_world"]["distribution"] == "opus-hello-world"
    assert names["hello_world"]["origin"] == "entry point"
    assert names["builtin-dispatch"]["hooks"] == ["opus_process_task"]
    assert data["processors"]["hello-world/v1"]["plugin"] == "hello_world"
    assert set(data["processors"]["hello-world/v1"]["actions"]) >= {"create", "rollback"}
    assert data["processors"]["hello-world/v1"]["missing"] == []
    assert data["commands"]["deploy"] == {"action": "apply", "plugin": "mapper"}
    assert data["commands"]["drift"]["action"] == "detect_drift"
    assert {"sqlite", "memory"} <= set(data["state_backends"])
    assert data["disabled"] == ["file"] and "file/v1" not in data["processors"]
    text = run_opus(tmp_path, "-p", "mapper", "plugins").stdout
    assert any(
        line.split("│")[1:4] == [" deploy  ", " apply        ", " mapper           "]
        for line in text.splitlines()
    ) or ("deploy" in text and "mapper" in text)
    for title in ("plugins", "processors", "commands", "state backends"):
        assert title in text.splitlines()
    assert "blocked plugins: (none)" in text
    deploy = run_opus(tmp_path, "-p", "mapper", "deploy", "--help")
    assert deploy.returncode == 0 and "Create what is missing" in deploy.stdout
