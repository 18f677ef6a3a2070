"""The CLI's contract: JSON shape, exit codes, one-line errors without tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from opus.cli import cli
from opus.cli.session import Session

HELLO = """\
apiVersion: hello-world/v1
kind: HelloWorld
metadata: {name: hello}
spec: {path: out/hello.txt, content: "${VAR:greeting}"}
---
apiVersion: hello-world/v1
kind: HelloWorld
metadata: {name: copy}
spec: {path: out/copy.txt, content: "sha ${VAR:hello:sha256}"}
"""


def run_cli(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    runner = CliRunner()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        result = runner.invoke(cli, list(args), obj=Session(), catch_exceptions=False)
    finally:
        os.chdir(cwd)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "hello.yaml").write_text(HELLO)
    return tmp_path


def state(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/state.db"


def test_apply_json_shape_and_files(workdir: Path) -> None:
    code, out, err = run_cli(
        workdir,
        "apply",
        "-f",
        "hello.yaml",
        "--var",
        "greeting=hi",
        "--context",
        "test",
        "--state",
        state(workdir),
        "--output",
        "json",
    )
    assert code == 0, err
    data = json.loads(out)
    assert set(data) >= {"run_id", "command", "action", "context", "ok", "tasks"}
    assert (data["command"], data["action"], data["context"], data["ok"]) == (
        "apply",
        "apply",
        "test",
        True,
    )
    hello = data["tasks"]["hello"]
    assert set(hello) >= {"status", "action", "outputs", "error", "duration_s", "drifted"}
    assert hello["status"] == "done" and hello["action"] == "create"
    assert (workdir / "out" / "hello.txt").read_text() == "hi"
    assert (workdir / "out" / "copy.txt").read_text() == f"sha {hello['outputs']['sha256']}"


def test_plan_and_drift_exit_codes(workdir: Path) -> None:
    base = ["-f", "hello.yaml", "--state", state(workdir), "--var", "greeting=hi"]
    assert run_cli(workdir, "plan", *base)[0] == 3
    assert run_cli(workdir, "apply", *base)[0] == 0
    code, out, _ = run_cli(workdir, "plan", *base)
    assert code == 0 and "2 unchanged" in out
    code, out, _ = run_cli(workdir, "plan", *base[:-1], "greeting=bye")
    assert code == 3 and "~ update hello" in out
    assert run_cli(workdir, "drift", *base)[0] == 0
    (workdir / "out" / "copy.txt").write_text("tampered")
    code, out, _ = run_cli(workdir, "drift", *base, "-o", "json")
    assert code == 3 and json.loads(out)["tasks"]["copy"]["drifted"] is True


def test_failed_task_exits_1(workdir: Path) -> None:
    (workdir / "out").mkdir()
    (workdir / "out" / "hello.txt").mkdir()  # a directory where the file should go
    code, out, err = run_cli(
        workdir,
        "apply",
        "-f",
        "hello.yaml",
        "--var",
        "greeting=x",
        "--state",
        state(workdir),
        "-o",
        "json",
    )
    data = json.loads(out)
    assert code == 1 and not data["ok"]
    assert data["tasks"]["hello"]["status"] in ("failed", "rolled_back")
    assert data["tasks"]["copy"]["status"] == "skipped"


@pytest.mark.parametrize(
    ("files", "args", "message"),
    [
        ({}, ["-f", "missing.yaml"], "missing.yaml: no such file or directory"),
        (
            {"t.yaml": "apiVersion: hello-world/v1\nkind: K\nmetadata: {name: a\n"},
            [],
            "t.yaml:4: invalid YAML",
        ),
        (
            {"t.yaml": "apiVersion: nope/v1\nkind: K\nmetadata: {name: a}\n"},
            [],
            "no processor for apiVersion 'nope/v1' (known: ",
        ),
        (
            {
                "t.yaml": "apiVersion: hello-world/v1\nkind: K\nmetadata: {name: a}\n"
                "spec: {path: x, content: '${VAR:who}'}\n"
            },
            [],
            "variable 'who' is not defined",
        ),
        (
            {
                "t.yaml": "apiVersion: hello-world/v1\nkind: K\n"
                "metadata: {name: a, dependencies: [{tasks: [b]}]}\n---\n"
                "apiVersion: hello-world/v1\nkind: K\n"
                "metadata: {name: b, dependencies: [{tasks: [a]}]}\n"
            },
            [],
            "dependency cycle: ",
        ),
        (
            {
                "t.yaml": "apiVersion: hello-world/v1\nkind: K\nmetadata: {name: a}\n---\n"
                "apiVersion: hello-world/v1\nkind: K\nmetadata: {name: a}\n"
            },
            [],
            "duplicate task name 'a'",
        ),
        (
            {"t.yaml": "apiVersion: hello-world/v1\nkind: K\nmetadata: {name: a}\n"},
            ["--values", "nope.yaml"],
            "nope.yaml: cannot read values file",
        ),
    ],
)
@pytest.mark.usefixtures("yaml_loader")
def test_bad_input_exits_2_with_one_clear_message(tmp_path: Path, files, args, message) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    argv = [
        "apply",
        *(args if args and args[0] == "-f" else ["-f", "t.yaml", *args]),
        "--state",
        state(tmp_path),
    ]
    code, out, err = run_cli(tmp_path, *argv)
    assert code == 2, (out, err)
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()  # nothing ran


def test_subprocess_streams_and_usage_errors(workdir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPUS_")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "opus",
            "-v",
            "apply",
            "-f",
            "hello.yaml",
            "--var",
            "greeting=hi",
            "--state",
            state(workdir),
            "--output",
            "json",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["ok"] is True  # logs went to stderr, stdout is pure JSON
    assert "INFO" in proc.stderr
    unknown = subprocess.run(
        [sys.executable, "-m", "opus", "launch"],
        cwd=workdir,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert unknown.returncode == 2 and "No such command 'launch'" in unknown.stderr


@pytest.mark.skipif(
    not hasattr(click.exceptions, "NoSuchCommand"), reason="click < 8.4 suggests no command"
)
@pytest.mark.parametrize(("typed", "meant"), [("validat", "validate"), ("aply", "apply")])
def test_a_mistyped_command_suggests_the_close_one(tmp_path: Path, typed: str, meant: str) -> None:
    """Subcommands are imported on first use: the suggestion still knows every one of them,
    the run commands of the command map included."""
    done = subprocess.run(
        [sys.executable, "-m", "opus", typed], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert f"No such command {typed!r}. Did you mean {meant!r}?" in done.stderr
