"""Following a run: plain lines when not a terminal, the live view in a pseudo-terminal,
the summary table and count line, verbosity and stream separation."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers_cli import hello, invoke, run_opus, state_url, task, write_manifest, write_procs


@pytest.fixture
def two(tmp_path: Path) -> Path:
    write_manifest(tmp_path / "t.yaml", [hello("a"), hello("b", "${VAR:a:sha256}")])
    return tmp_path


def test_plain_lines_and_summary_line_by_line(two: Path) -> None:
    result = run_opus(two, "apply", "-f", "t.yaml", "--state", state_url(two))
    assert result.returncode == 0, result.stderr
    assert [re.sub(r"\(\d+\.\d\ds\)", "(T)", line) for line in result.stderr.splitlines()] == [
        "a: created (T)",
        "b: created (T)",
    ]
    out = result.stdout.splitlines()
    assert re.fullmatch(r"apply in context default \(run \S+\)\s*", out[0])
    header = [c.strip() for c in out[2].strip("┃ ").split("┃")]
    assert out[1].startswith("┏") and out[3].startswith("┡")
    assert header == ["task", "action", "status", "duration", "error"]
    rows = [
        [c.strip() for c in line.strip("│ ").split("│")] for line in out if line.startswith("│")
    ]
    assert [r[:3] for r in rows] == [["a", "create", "created"], ["b", "create", "created"]]
    assert re.fullmatch(r"2 created in \d+\.\d\d s", out[-1])
    assert all(len(line) < 200 for line in out)  # one line per row, no wrapping
    again = run_opus(two, "apply", "-f", "t.yaml", "--state", state_url(two))
    assert again.returncode == 0 and again.stdout.splitlines()[-1].startswith("2 unchanged in ")


def test_long_errors_do_not_wrap_at_80_columns_when_piped(tmp_path: Path) -> None:
    write_procs(tmp_path)
    message = "x" * 150
    write_manifest(
        tmp_path / "t.yaml",
        [
            task("cli-test/fail-v1", "bad", {"message": message}),
            hello("after", dependencies=[{"tasks": ["bad"]}]),
        ],
    )
    result = run_opus(
        tmp_path,
        "-p",
        "opus_cli_testprocs",
        "apply",
        "-f",
        "t.yaml",
        "--state",
        state_url(tmp_path),
    )
    assert result.returncode == 1
    assert "bad: failed" in result.stderr and f"boom: {message}" in result.stderr
    assert "after: skipped: dependency 'bad' failed" in result.stderr
    bad_row = next(line for line in result.stdout.splitlines() if "│ bad" in line)
    assert "failed" in bad_row and "boom: " + "x" * 90 in bad_row
    assert result.stdout.splitlines()[-1].startswith("1 failed, 1 skipped in ")


def test_verbose_quiet_and_no_progress(two: Path) -> None:
    verbose = run_opus(two, "-v", "apply", "-f", "t.yaml", "--state", state_url(two))
    lines = [line for line in verbose.stderr.splitlines() if not line.startswith("INFO ")]
    assert lines[0].startswith("run ") and "apply in context default, 2 task(s)" in lines[0]
    assert "a: create ..." in lines and "b: create ..." in lines
    quiet = run_opus(two, "-q", "plan", "-f", "t.yaml", "--state", state_url(two))
    assert (
        quiet.stderr == ""
        and quiet.stdout.splitlines()[-1] == "No changes. Everything is up to date."
    )
    assert run_opus(two, "-qq", "apply", "-f", "t.yaml", "--state", state_url(two)).stdout == ""
    plain = invoke(two, "apply", "-f", "t.yaml", "--state", state_url(two), "--no-progress")
    assert [re.sub(r" \(\d+\.\d\ds\)$", "", line) for line in plain.stderr.splitlines()] == [
        "a: unchanged",
        "b: unchanged",
    ]


def test_json_stays_parseable_with_debug_logs(two: Path) -> None:
    result = run_opus(two, "-vv", "apply", "-f", "t.yaml", "--state", state_url(two), "-o", "json")
    assert result.returncode == 0
    assert json.loads(result.stdout)["tasks"]["b"]["status"] == "done"
    assert "DEBUG" in result.stderr or "INFO" in result.stderr
    assert "a: create ..." in result.stderr  # progress lines go to stderr too


def _read_pty(fd: int, proc: subprocess.Popen, timeout: float = 30) -> bytes:
    data = b""
    deadline = time.time() + timeout
    while time.time() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            data += chunk
        elif proc.poll() is not None:
            break
    return data


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_live_view_in_a_pseudo_terminal(tmp_path: Path) -> None:
    write_procs(tmp_path)
    write_manifest(
        tmp_path / "t.yaml",
        [
            task("cli-test/slow-v1", "slow-one", {"seconds": 0.6}),
            task("cli-test/slow-v1", "slow-two", {"seconds": 0.6}),
            task(
                "cli-test/fail-v1",
                "doomed",
                {"message": "kaput"},
                dependencies=[{"tasks": ["slow-one"]}],
            ),
        ],
    )
    master, slave = os.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPUS_")}
    env.update(TERM="xterm-256color", COLUMNS="120", LINES="40", PYTHONPATH=str(tmp_path))
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "opus",
            "-p",
            "opus_cli_testprocs",
            "apply",
            "-f",
            "t.yaml",
            "--state",
            state_url(tmp_path),
            "--keep-going",
        ],
        cwd=tmp_path,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        close_fds=True,
    )
    os.close(slave)
    try:
        raw = _read_pty(master, proc)
        proc.wait(timeout=30)
    finally:
        os.close(master)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw.decode("utf-8", "replace"))
    assert proc.returncode == 1, text
    assert "apply · default" in text  # the progress bar's label
    assert "slow-one" in text and "create" in text  # a running task's line
    assert "✓ slow-one created" in text and "✓ slow-two created" in text
    assert "✗ doomed failed" in text and "boom: kaput" in text
    assert "┃ task" in text  # the summary table, rich on a terminal
    assert re.search(r"2 created, 1 failed in \d+\.\d\d s", text)
