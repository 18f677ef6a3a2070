"""The examples and the README's first command work as documented."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("OPUS_", "VIRTUAL_ENV"))}


def test_library_example_writes_both_files(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / "hello_world.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "hello.txt").read_text() == "Hello World!"
    assert (tmp_path / "shout.txt").read_text() == "Hello World! (from opus)"
    assert "hello: done (create)" in proc.stdout


def test_cli_example_applies_then_is_unchanged(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "opus",
        "apply",
        "-f",
        str(REPO / "examples" / "hello_world.yaml"),
        "--context",
        "dev",
    ]
    first = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=60, env=clean_env()
    )
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "hello-world" / "hello.txt").read_text() == "Hello World!"
    about = (tmp_path / "hello-world" / "about.txt").read_text()
    assert about.endswith("written in context dev") and "sha256 7f83b165" in about
    second = subprocess.run(
        command + ["--output", "json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )
    assert second.returncode == 0 and second.stdout.count('"unchanged"') == 2
    with sqlite3.connect(tmp_path / ".opus" / "state.db") as db:  # the default state
        assert db.execute("select count(*) from runs").fetchone()[0] == 2


def readme_first_command() -> str:
    text = (REPO / "README.md").read_text()
    block = re.search(r"```sh\n(.+?)\n```", text, re.S)
    assert block, "README.md must open with a ```sh block"
    return block.group(1).strip()


@pytest.mark.slow
def test_readme_first_command_works_in_a_fresh_copy(tmp_path: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    copy = tmp_path / "repo"
    for name in files:
        source = REPO / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    proc = subprocess.run(
        ["bash", "-c", readme_first_command()],
        cwd=copy,
        capture_output=True,
        text=True,
        timeout=900,
        env=clean_env(),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (copy / "hello-world" / "hello.txt").read_text() == "Hello World!"
    assert (copy / ".opus" / "state.db").exists()
    assert "2 created" in proc.stdout


def test_readme_tour_apply_puts_a_tampered_file_right(tmp_path: Path) -> None:
    """The README tour: tamper, drift and plan say why (exit 3), apply puts it right."""

    def opus(*args: str) -> subprocess.CompletedProcess[str]:
        manifest = str(REPO / "examples" / "hello_world.yaml")
        return subprocess.run(
            [sys.executable, "-m", "opus", *args, "-f", manifest, "--context", "dev"],
            cwd=tmp_path, capture_output=True, text=True, timeout=60, env=clean_env(),
        )  # fmt: skip

    assert opus("apply").returncode == 0
    hello = tmp_path / "hello-world" / "hello.txt"
    hello.write_text("tampered\n")
    drift = opus("drift")
    assert drift.returncode == 3 and "hello: drifted: " in drift.stdout
    assert "content changed" in drift.stdout
    plan = opus("plan")
    assert plan.returncode == 3 and "~ update hello (drifted: " in plan.stdout
    (tmp_path / "opus.yaml").write_text("refresh: false\n")  # the config key trusts state
    assert opus("apply").returncode == 0 and hello.read_text() == "tampered\n"
    (tmp_path / "opus.yaml").unlink()
    apply = opus("apply")
    assert apply.returncode == 0 and "1 updated, 1 unchanged" in apply.stdout
    assert hello.read_text() == "Hello World!"
    assert opus("drift").returncode == 0
