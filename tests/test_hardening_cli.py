"""Smaller hardening fixes, met through the real CLI (issue 12, item 7)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from helpers_cli import cli_env

FILE_TASKS = [
    {
        "apiVersion": "file/v1",
        "kind": "File",
        "metadata": {"name": n},
        "spec": {"path": f"{n}.txt", "content": n},
    }
    for n in ("a", "b", "c")
]


def opus(
    workdir: Path, *args: str, plugins: tuple[str, ...] = (), env: dict | None = None
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "opus"]
    for module in plugins:
        argv += ["-p", module]
    return subprocess.run(
        argv + list(args),
        cwd=workdir,
        env=cli_env(workdir, env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def write(workdir: Path, docs: list[dict], name: str = "t.yaml") -> None:
    (workdir / name).write_text(yaml.safe_dump_all(docs, sort_keys=False))


# -- disk full ----------------------------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path) -> Path:
    pytest.importorskip("opus_file", reason="needs the opus-file plugin installed")
    write(tmp_path, FILE_TASKS)
    return tmp_path


def test_disk_full_mid_run_stops_reports_and_exits_1(files: Path) -> None:
    # writes: lock, run start, task a -> then the disk is full
    url = f"fullsqlite:///{files}/s.db?writes=3"
    done = opus(
        files,
        "apply",
        "-f",
        "t.yaml",
        "--state",
        url,
        "--parallelism",
        "1",
        "--keep-going",
        plugins=("helpers_fullstate",),
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "error: saving state failed: OSError: [Errno 28] No space left on device" in (
        done.stderr
    )
    assert "1 created, 1 failed, 1 skipped" in done.stdout  # the summary is printed
    assert "not started: saving state failed" in done.stdout  # --keep-going or not
    # the next run (disk freed) takes the dead run's lock over and closes its record
    again = opus(files, "apply", "-f", "t.yaml", "--state", f"sqlite:///{files}/s.db")
    assert again.returncode == 0, again.stderr
    runs = json.loads(
        opus(files, "runs", "list", "--state", f"sqlite:///{files}/s.db", "-o", "json").stdout
    )
    assert [r["status"] for r in runs] == ["ok", "interrupted"]


def test_disk_full_at_the_end_of_the_run_is_reported_in_json(files: Path) -> None:
    # every write succeeds but recording the end of the run (the saves may be grouped, so
    # counting writes would depend on timing)
    url = f"fullsqlite:///{files}/s.db?fail=finish_run"
    done = opus(
        files, "apply", "-f", "t.yaml", "--state", url, "-o", "json", plugins=("helpers_fullstate",)
    )
    assert done.returncode == 1, done.stderr
    result = json.loads(done.stdout)
    assert result["ok"] is False
    assert {t["status"] for t in result["tasks"].values()} == {"done"}
    assert result["state_error"].startswith("recording the end of run")
    assert "No space left on device" in result["state_error"]
    assert "Traceback" not in done.stderr


# -- read-only commands do not create state -------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("state", "list"),
        ("runs", "list"),
        ("state", "show", "web"),
        ("runs", "show", "x"),
        ("state", "history", "web"),
        ("state", "unlock"),
    ],
)
def test_reading_state_that_does_not_exist_creates_nothing(tmp_path: Path, args) -> None:
    done = opus(tmp_path, *args)
    assert done.returncode == 2
    assert "no state found at sqlite:///.opus/state.db" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_migrate_from_a_missing_source_fails(tmp_path: Path) -> None:
    done = opus(
        tmp_path, "state", "migrate", "--from", "sqlite:///missing.db", "--to", "sqlite:///new.db"
    )
    assert done.returncode == 2
    assert "no state found at sqlite:///missing.db" in done.stderr
    assert list(tmp_path.iterdir()) == []


# -- hooks, json errors, empty manifests ---------------------------------------------------

BROKEN_HOOK = textwrap.dedent(
    """
    from opus import hookimpl

    @hookimpl
    def opus_task_done(task, ctx, outcome):
        raise RuntimeError("observer is broken")
    """
)


def test_a_failing_hook_is_one_line_without_v(files: Path) -> None:
    (files / "broken_hook.py").write_text(BROKEN_HOOK)
    env = {"PYTHONPATH": f"{files}{os.pathsep}{cli_env(files)['PYTHONPATH']}"}
    done = opus(files, "apply", "-f", "t.yaml", plugins=("broken_hook",), env=env)
    assert done.returncode == 0, done.stderr
    assert "opus_task_done hook failed; the run goes on: RuntimeError: observer is broken" in (
        done.stderr
    )
    assert "Traceback" not in done.stderr
    verbose = opus(files, "-v", "apply", "-f", "t.yaml", plugins=("broken_hook",), env=env)
    assert "Traceback" in verbose.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (("apply", "-f", "missing.yaml"), "missing.yaml: no such file or directory"),
        (("apply", "-f", "t.yaml", "--var", "novalue"), "expected NAME=VALUE"),
        (("plan", "-o", "json", "-f", "t.yaml", "--parallelism", "x"), "'--parallelism'"),
        (("state", "list"), "no state found"),
    ],
)
def test_output_json_prints_an_error_object_on_bad_input(files: Path, args, message) -> None:
    done = opus(files, *args, "-o", "json")
    assert done.returncode == 2
    error = json.loads(done.stdout)
    assert error["ok"] is False and error["exit_code"] == 2
    assert message in error["error"]


def test_an_empty_manifest_warns(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("# nothing here yet\n---\n")
    done = opus(tmp_path, "apply", "-f", "empty.yaml", "--state", "memory://")
    assert done.returncode == 0
    assert "warning: no tasks found in empty.yaml" in done.stderr


# -- masking short sensitive values -------------------------------------------------------


def test_a_one_letter_sensitive_value_masks_only_itself(tmp_path: Path) -> None:
    pytest.importorskip("opus_shell", reason="needs the opus-shell plugin installed")
    task = {
        "apiVersion": "shell/v1",
        "kind": "Shell",
        "metadata": {"name": "pin"},
        "spec": {
            "env": {
                "PIN": {"value": "e", "sensitive": True},
                "TOKEN": {"value": "tok-123456", "sensitive": True},
            },
            "create": 'echo "hello there"; echo "pin=$PIN"; echo "t=x${TOKEN}x"',
        },
    }
    write(tmp_path, [task])
    done = opus(tmp_path, "apply", "-f", "t.yaml", "--state", "memory://", "-o", "json")
    assert done.returncode == 0, done.stderr
    stdout = json.loads(done.stdout)["tasks"]["pin"]["outputs"]["stdout"]
    assert stdout == "hello there\npin=***\nt=x***x"


def test_a_spec_with_the_literal_known_after_apply_text_is_unchanged_next_time(
    files: Path,
) -> None:
    doc = {**FILE_TASKS[0], "spec": {"path": "a.txt", "content": "x (known after apply) y"}}
    write(files, [doc])
    args = ("apply", "-f", "t.yaml", "--state", "sqlite:///s.db", "-o", "json")
    first = opus(files, *args)
    assert json.loads(first.stdout)["tasks"]["a"]["status"] == "done", first.stderr
    second = opus(files, *args)
    assert json.loads(second.stdout)["tasks"]["a"]["status"] == "unchanged", second.stderr
