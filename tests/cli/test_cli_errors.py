"""Errors: one clear line and exit 2 for user mistakes (group level included), a short
message and a hint for bugs, usage errors exit 2, and shell completion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from opus_cli_testkit import hello, run, write_manifest


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
    write_manifest(tmp_path / "t.yaml", hello("a"))
    result = run(tmp_path, *args)
    assert result.code == 2, result
    assert result.err.startswith(message) and len(result.err.strip().splitlines()) == 1
    assert "Traceback" not in result.err and result.out == ""


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
    write_manifest(tmp_path / "t.yaml", hello("a"))
    result = run(tmp_path, *args)
    assert result.code == 2 and "Usage:" in result.err and "Traceback" not in result.err


def test_unexpected_errors_are_short_with_a_hint_and_a_traceback_with_v(tmp_path: Path) -> None:
    (tmp_path / "broken_plugin.py").write_text("raise RuntimeError('kaboom at import')\n")
    result = run(tmp_path, "-p", "broken_plugin", "plugins")
    assert result.code == 1
    assert result.err.splitlines() == [
        "unexpected error: RuntimeError: kaboom at import",
        "(a bug or an environment problem; rerun with -v for the traceback)",
    ]
    verbose = run(tmp_path, "-v", "-p", "broken_plugin", "plugins")
    assert verbose.code == 1 and "Traceback (most recent call last)" in verbose.err
    assert verbose.err.splitlines()[-1] == "unexpected error: RuntimeError: kaboom at import"


def test_help_and_version(tmp_path: Path) -> None:
    result = run(tmp_path, "--help")
    assert result.code == 0
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
        assert f"  {name} " in result.out
    assert run(tmp_path, "--version").out.startswith("opus, version ")
    plan_help = run(tmp_path, "plan", "--help").out
    assert "--destroy" in plan_help and "OPUS_STATE" in plan_help


def test_shell_completion_knows_dynamic_commands_and_task_names(tmp_path: Path) -> None:
    write_manifest(tmp_path / "t.yaml", hello("alpha"), hello("beta"))
    source = run(tmp_path, env={"_OPUS_COMPLETE": "bash_source"})
    assert source.code == 0 and "_opus_completion" in source.out
    words = run(
        tmp_path,
        env={"_OPUS_COMPLETE": "bash_complete", "COMP_WORDS": "opus ap", "COMP_CWORD": "1"},
    )
    assert "plain,apply" in words.out.splitlines()
    words = run(
        tmp_path,
        env={
            "_OPUS_COMPLETE": "bash_complete",
            "COMP_WORDS": "opus plan -f t.yaml --target ",
            "COMP_CWORD": "5",
        },
    )
    assert {"plain,alpha", "plain,beta"} <= set(words.out.splitlines())
    words = run(
        tmp_path,
        env={"_OPUS_COMPLETE": "bash_complete", "COMP_WORDS": "opus -p nope a", "COMP_CWORD": "3"},
    )
    assert words.code == 0 and "Traceback" not in words.err


def test_plugins_lists_everything(tmp_path: Path) -> None:
    (tmp_path / "mapper.py").write_text(
        "import opus\n\n@opus.hookimpl\ndef opus_command_map():\n    return {'deploy': 'apply'}\n"
    )
    data = json.loads(
        run(tmp_path, "-p", "mapper", "--disable-plugin", "file", "plugins", "-o", "json").out
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
    text = run(tmp_path, "-p", "mapper", "plugins").out
    assert any(
        line.split("│")[1:4] == [" deploy  ", " apply        ", " mapper           "]
        for line in text.splitlines()
    ) or ("deploy" in text and "mapper" in text)
    for title in ("plugins", "processors", "commands", "state backends"):
        assert title in text.splitlines()
    assert "blocked plugins: (none)" in text
    deploy = run(tmp_path, "-p", "mapper", "deploy", "--help")
    assert deploy.code == 0 and "Create what is missing" in deploy.out
