"""``--output ndjson``: one versioned JSON event per line, streamed while the run goes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from helpers_cli import cli_env, hello, run_opus, state_url, task, write_manifest, write_procs


def events_of(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_event_stream_of_a_failing_run(tmp_path: Path) -> None:
    write_procs(tmp_path)
    write_manifest(
        tmp_path / "t.yaml",
        [
            hello("a"),
            task("cli-test/fail-v1", "bad", {"message": "nope"}, dependencies=[{"tasks": ["a"]}]),
            hello("c", dependencies=[{"tasks": ["bad"]}]),
        ],
    )
    result = run_opus(
        tmp_path,
        "-v",
        "-p",
        "opus_cli_testprocs",
        "apply",
        "-f",
        "t.yaml",
        "--state",
        state_url(tmp_path),
        "-o",
        "ndjson",
    )
    assert result.returncode == 1
    events = events_of(result.stdout)  # every stdout line is JSON, logs went to stderr
    assert {e["schema"] for e in events} == {"opus.events/v1"}
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    kinds = [(e["event"], e.get("task")) for e in events]
    assert kinds[:4] == [
        ("run_start", None),
        ("task_start", "a"),
        ("task_done", "a"),
        ("task_start", "bad"),
    ]
    # the engine reports the dependents it skips as it records the failure
    assert sorted(kinds[4:6]) == [("task_failed", "bad"), ("task_skipped", "c")]
    assert kinds[6:] == [("run_finish", None), ("exit", None)]
    start, *_, finish, last = events
    assert start["command"] == "apply" and start["context"] == "default"
    assert [t["name"] for t in start["tasks"]] == ["a", "bad", "c"]
    assert start["tasks"][0]["apiVersion"] == "hello-world/v1"
    assert len({e["run_id"] for e in events}) == 1
    done = events[2]
    assert done["status"] == "done" and done["action"] == "create"
    assert set(done["outputs"]) == {"path", "sha256", "size"}
    assert events[1]["action"] == "create"
    failed = next(e for e in events if e["event"] == "task_failed")
    assert failed["status"] == "failed" and "boom: nope" in failed["error"]
    skipped = next(e for e in events if e["event"] == "task_skipped")
    assert skipped["status"] == "skipped" and "bad" in skipped["error"]
    assert finish["ok"] is False and finish["counts"] == {"done": 1, "failed": 1, "skipped": 1}
    assert last["exit_code"] == 1


def test_events_are_flushed_line_by_line(tmp_path: Path) -> None:
    write_procs(tmp_path)
    write_manifest(
        tmp_path / "t.yaml",
        [
            task("cli-test/slow-v1", "first", {"seconds": 0.1}),
            task("cli-test/slow-v1", "long", {"seconds": 3}, dependencies=[{"tasks": ["first"]}]),
        ],
    )
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
            "-o",
            "ndjson",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(tmp_path),
    )
    try:
        seen = []
        while not any(e["event"] == "task_start" and e["task"] == "long" for e in seen):
            seen.append(json.loads(proc.stdout.readline()))
        assert proc.poll() is None  # we read it while the run was still going
        assert [e["event"] for e in seen] == ["run_start", "task_start", "task_done", "task_start"]
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == 0


def test_validation_error_is_an_error_event_and_exit_2(tmp_path: Path) -> None:
    write_manifest(tmp_path / "t.yaml", [task("nope/v1", "x")])
    result = run_opus(
        tmp_path, "apply", "-f", "t.yaml", "--state", state_url(tmp_path), "-o", "ndjson"
    )
    assert result.returncode == 2
    (event,) = events_of(result.stdout)
    assert event["event"] == "error" and event["exit_code"] == 2 and event["run_id"] is None
    assert "no processor for apiVersion 'nope/v1'" in event["message"]
    assert result.stderr.startswith("error: ")


def test_plan_destroy_events(tmp_path: Path) -> None:
    write_manifest(tmp_path / "t.yaml", [hello("a"), hello("b", dependencies=[{"tasks": ["a"]}])])
    assert (
        run_opus(tmp_path, "apply", "-f", "t.yaml", "--state", state_url(tmp_path)).returncode == 0
    )
    result = run_opus(
        tmp_path,
        "plan",
        "--destroy",
        "-f",
        "t.yaml",
        "--state",
        state_url(tmp_path),
        "-o",
        "ndjson",
    )
    assert result.returncode == 3
    events = events_of(result.stdout)
    assert [(e["event"], e.get("task"), e.get("action")) for e in events] == [
        ("run_start", None, "plan"),
        ("task_done", "b", "delete"),
        ("task_done", "a", "delete"),
        ("run_finish", None, "plan"),
        ("exit", None, None),
    ]
