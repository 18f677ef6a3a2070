"""Outputs must be JSON (issue 12, item 6): anything else fails the task, which is rolled
back, and nothing invalid is written to state. Through the CLI with a -p plugin."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers_cli import cli_env

BAD = {
    "datetime": "outputs.value is a datetime.datetime (convert it, e.g. to an ISO 8601 string)",
    "set": "outputs.value is a set",
    "bytes": "outputs.value is a bytes",
    "object": "outputs.value is a helpers_badoutputs._Thing",
    "nan": "outputs.value is nan (JSON has no NaN/Infinity)",
    "infinity": "outputs.value is inf (JSON has no NaN/Infinity)",
    "nested": "outputs.value.ok[1].when is a datetime.date",
    "int-key": "outputs.value has a int key 1",
}


def apply(workdir: Path, output: str) -> subprocess.CompletedProcess[str]:
    doc = {
        "apiVersion": "bad-outputs/v1",
        "kind": "Bad",
        "metadata": {"name": "t"},
        "spec": {"output": output},
    }
    (workdir / "t.yaml").write_text(yaml.safe_dump(doc))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "opus",
            "-p",
            "helpers_badoutputs",
            "apply",
            "-f",
            "t.yaml",
            "--state",
            "sqlite:///s.db",
            "-o",
            "json",
        ],
        cwd=workdir,
        env=cli_env(workdir),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("kind", sorted(BAD))
def test_a_non_json_output_fails_the_task_and_rolls_it_back(tmp_path: Path, kind: str) -> None:
    done = apply(tmp_path, kind)
    assert done.returncode == 1, done.stderr
    task = json.loads(done.stdout)["tasks"]["t"]
    assert task["status"] == "rolled_back"
    assert "create returned an output that is not JSON" in task["error"]
    assert BAD[kind] in task["error"]
    assert (tmp_path / "rolled-back-t").exists() and not (tmp_path / "created-t").exists()
    with sqlite3.connect(tmp_path / "s.db") as db:
        rows = db.execute("SELECT outputs FROM tasks").fetchall()
    for (outputs,) in rows:  # whatever is stored parses as strict JSON
        json.loads(outputs or "null", parse_constant=lambda c: pytest.fail(f"wrote {c}"))
    assert "Traceback" not in done.stderr


def test_json_outputs_are_kept_as_they_are(tmp_path: Path) -> None:
    done = apply(tmp_path, "fine")
    assert done.returncode == 0, done.stderr
    outputs = json.loads(done.stdout)["tasks"]["t"]["outputs"]
    assert outputs == {"value": {"list": [1, 2.5, "x", None, True], "map": {"a": "b"}}}
