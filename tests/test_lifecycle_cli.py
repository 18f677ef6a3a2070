"""The Terraform-style lifecycle through the real CLI: apply, plan, drift, describe, delete.

One SQLite state file is carried through the whole cycle; each step checks the exit code,
what the run reports (``--output json``) and what is on disk and in state afterwards.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from helpers_cli import json_out, run_opus, statuses, task, write_manifest
from helpers_procs import ECHO

HELLO = "hello-world/v1"
pytestmark = pytest.mark.slow


class Cycle:
    """The CLI against one manifest and one state file, in one working directory."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.url = f"sqlite:///{workdir}/state/state.db"
        self.manifest = write_manifest(
            workdir / "tasks.yaml",
            [
                task(HELLO, "a", {"path": "out/a.txt", "content": "${VAR:greeting}"}, kind="File"),
                task(
                    HELLO,
                    "b",
                    {"path": "out/b.txt", "content": "a is ${VAR:a:sha256}"},
                    kind="File",
                ),
                task(
                    HELLO,
                    "c",
                    {"path": "out/c.txt", "content": "a lives at ${VAR:a:path}"},
                    kind="File",
                ),
                task(ECHO, "e", {"value": "${VAR:tag}"}, kind="Echo", depends=["c"]),
            ],
        )

    def run(
        self,
        command: str,
        *args: str,
        greeting: str = "hello",
        tag: str = "v1",
        json_output: bool = True,
    ) -> Any:
        argv = [
            command,
            "-f",
            str(self.manifest),
            "--state",
            self.url,
            "--var",
            f"greeting={greeting}",
            "--var",
            f"tag={tag}",
            *args,
        ]
        if json_output:
            argv += ["--output", "json"]
        return run_opus(self.dir, *argv)

    def state(self, *args: str) -> Any:
        return run_opus(self.dir, "state", *args, "--state", self.url)

    def read(self, name: str) -> str:
        return (self.dir / "out" / f"{name}.txt").read_text()


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_full_cycle(tmp_path: Path) -> None:
    cycle = Cycle(tmp_path)

    # apply: everything is created, outputs flow to dependents.
    proc = cycle.run("apply")
    assert proc.returncode == 0, proc.stderr
    first = json_out(proc)
    assert statuses(first) == {n: ("done", "create") for n in "abce"}
    assert cycle.read("a") == "hello"
    assert cycle.read("b") == f"a is {sha256('hello')}"
    assert cycle.read("c") == "a lives at out/a.txt"
    assert first["tasks"]["e"]["outputs"]["prior"] is None  # ctx.state: never applied
    assert first["tasks"]["e"]["outputs"]["action"] == "create"

    # apply again: nothing to do; the files are not rewritten.
    mtime = (tmp_path / "out" / "b.txt").stat().st_mtime_ns
    proc = cycle.run("apply")
    assert proc.returncode == 0, proc.stderr
    assert statuses(json_out(proc)) == {n: ("unchanged", None) for n in "abce"}
    assert (tmp_path / "out" / "b.txt").stat().st_mtime_ns == mtime

    # plan with nothing to do: exit 0 (text output).
    proc = cycle.run("plan", json_output=False)
    assert proc.returncode == 0, proc.stderr
    assert "4 unchanged" in proc.stdout

    # plan after a variable changed: exit 3, a would change; b and c use a's outputs, which
    # are "known after apply" (plan cannot tell which outputs an update changes); e would not
    # change. Nothing is executed.
    proc = cycle.run("plan", greeting="hi", json_output=False)
    assert proc.returncode == 3, proc.stderr
    assert "~ update a" in proc.stdout
    assert '~ content: "hello" -> "hi"' in proc.stdout
    assert "~ update b" in proc.stdout and "(known after apply)" in proc.stdout
    assert "~ update e" not in proc.stdout
    proc = cycle.run("plan", greeting="hi")
    assert proc.returncode == 3
    planned = json_out(proc)
    assert statuses(planned) == {
        "a": ("planned", "update"),
        "b": ("planned", "update"),
        "c": ("planned", "update"),
        "e": ("unchanged", None),
    }
    assert planned["tasks"]["a"]["diff"]["changed"] == {"content": ["hello", "hi"]}
    assert cycle.read("a") == "hello"

    # apply the change: an upstream output change makes the downstream an update.
    proc = cycle.run("apply", greeting="hi")
    assert proc.returncode == 0, proc.stderr
    assert statuses(json_out(proc)) == {
        "a": ("done", "update"),
        "b": ("done", "update"),
        "c": ("unchanged", None),
        "e": ("unchanged", None),
    }
    assert cycle.read("a") == "hi"
    assert cycle.read("b") == f"a is {sha256('hi')}"
    proc = cycle.run("plan", greeting="hi")
    assert proc.returncode == 0 and {s for s, _ in statuses(json_out(proc)).values()} == {
        "unchanged"
    }

    # ctx.state is the previous record: the echo processor reports it on update.
    proc = cycle.run("apply", greeting="hi", tag="v2")
    assert proc.returncode == 0, proc.stderr
    echoed = json_out(proc)["tasks"]["e"]
    assert (echoed["status"], echoed["action"]) == ("done", "update")
    prior = echoed["outputs"]["prior"]
    assert prior["run_id"] == first["run_id"]
    assert prior["applied_spec"] == {"value": "v1"}
    assert prior["value"] == "v1" and prior["status"] == "done"
    assert prior["resource_checksum"] == "echo-v1"

    # someone edits a file by hand: drift exits 3 and names the task.
    (tmp_path / "out" / "b.txt").write_text("edited by hand")
    proc = cycle.run("drift", greeting="hi", tag="v2", json_output=False)
    assert proc.returncode == 3, proc.stderr
    assert "b: drifted" in proc.stderr
    assert any(
        line.split()[:2] == ["│", "b"] and "drifted" in line for line in proc.stdout.splitlines()
    ), proc.stdout
    proc = cycle.run("drift", greeting="hi", tag="v2")
    assert proc.returncode == 3
    drift = json_out(proc)["tasks"]
    assert drift["b"]["drifted"] is True and drift["b"]["resource_drift"] is True
    assert drift["b"]["spec_drift"] is False
    assert drift["a"]["drifted"] is False and drift["c"]["drifted"] is False
    assert drift["e"]["drifted"] is None  # no detect_drift, spec in sync: unknown

    # spec drift: the resolved spec differs from the applied one.
    proc = cycle.run("drift", greeting="bye", tag="v2")
    assert proc.returncode == 3
    drift = json_out(proc)["tasks"]
    assert drift["a"]["spec_drift"] is True and drift["a"]["drifted"] is True
    assert drift["a"]["details"]["spec_diff"]["changed"] == {"content": ["hi", "bye"]}

    # describe: a readable table; JSON carries the stored record.
    proc = cycle.run("describe", greeting="hi", tag="v2", json_output=False)
    assert proc.returncode == 0, proc.stderr
    assert "described" in proc.stdout and "4 described" in proc.stdout
    proc = cycle.run("describe", greeting="hi", tag="v2")
    assert proc.returncode == 0
    described = json_out(proc)["tasks"]["a"]
    shown = json_out(cycle.state("show", "a", "--output", "json"))
    assert described["details"]["state"]["spec_checksum"] == shown["spec_checksum"]
    assert described["details"]["state"]["applied_spec"] == {"path": "out/a.txt", "content": "hi"}
    assert described["details"]["exists"] is True

    # delete: dependents first, files gone, state empty.
    proc = cycle.run("delete", "--yes", greeting="hi", tag="v2")
    assert proc.returncode == 0, proc.stderr
    deleted = json_out(proc)
    assert statuses(deleted) == {n: ("done", "delete") for n in "abce"}
    entries = json_out(
        run_opus(
            tmp_path, "runs", "show", deleted["run_id"], "--state", cycle.url, "--output", "json"
        )
    )["entries"]
    order = [e["name"] for e in entries]
    assert sorted(order) == ["a", "b", "c", "e"]
    assert order.index("e") < order.index("c") < order.index("a")
    assert order.index("b") < order.index("a")
    assert not any((tmp_path / "out" / f"{n}.txt").exists() for n in "abc")
    proc = cycle.state("list", "--output", "json")
    assert proc.returncode == 0 and json.loads(proc.stdout) == []
    proc = cycle.state("list")
    assert proc.returncode == 0 and "hello-world/v1" not in proc.stdout

    # delete again: nothing recorded is left; tasks whose references are gone with their
    # upstream records are "unchanged" (nothing to delete) rather than failures.
    proc = cycle.run("delete", "--yes", greeting="hi", tag="v2")
    assert proc.returncode == 0, proc.stderr
    again = json_out(proc)["tasks"]
    assert (again["b"]["status"], again["b"]["action"]) == ("unchanged", None)
    assert "nothing to delete" in again["b"]["details"]["reason"]
    assert json.loads(cycle.state("list", "--output", "json").stdout) == []

    # drift after delete: nothing is in state, so everything is reported as drifted.
    proc = cycle.run("drift", greeting="hi", tag="v2")
    assert proc.returncode == 3, proc.stderr
    after = json_out(proc)["tasks"]
    assert {n: (t["status"], t["drifted"]) for n, t in after.items()} == {
        n: ("done", True) for n in "abce"
    }
    assert "not in state" in after["b"]["details"]["reason"]


def test_plan_before_anything_is_applied_shows_creates(tmp_path: Path) -> None:
    cycle = Cycle(tmp_path)
    proc = cycle.run("plan", json_output=False)
    assert proc.returncode == 3, proc.stderr
    for name in "abce":
        assert f"+ create {name}" in proc.stdout
    assert not (tmp_path / "out").exists()
    proc = cycle.state("list", "--output", "json")
    assert json.loads(proc.stdout) == []


def test_failed_apply_is_recorded_and_retried_as_update(tmp_path: Path) -> None:
    """A task that failed is recorded as failed, with its error; the next apply retries it."""
    url = f"sqlite:///{tmp_path}/state.db"
    bad = write_manifest(
        tmp_path / "bad.yaml",
        [
            task(HELLO, "ok", {"path": "ok.txt"}, kind="File"),
            task("opus-test/fail-v1", "broken", {"message": "no quota left"}, depends=["ok"]),
        ],
    )
    proc = run_opus(tmp_path, "apply", "-f", str(bad), "--state", url, "--output", "json")
    assert proc.returncode == 1
    report = json_out(proc)
    assert statuses(report) == {"ok": ("done", "create"), "broken": ("rolled_back", "create")}
    assert "no quota left" in report["tasks"]["broken"]["error"]
    shown = json_out(run_opus(tmp_path, "state", "show", "broken", "--state", url, "-o", "json"))
    assert shown["status"] == "failed" and "no quota left" in shown["error"]
    # The failed create left nothing behind, so the retry is a create again.
    proc = run_opus(tmp_path, "apply", "-f", str(bad), "--state", url, "--output", "json")
    assert proc.returncode == 1
    assert statuses(json_out(proc)) == {
        "ok": ("unchanged", None),
        "broken": ("rolled_back", "create"),
    }
    history = json_out(
        run_opus(tmp_path, "state", "history", "broken", "--state", url, "-o", "json")
    )
    assert [(h["action"], h["status"]) for h in history] == [("create", "rolled_back")] * 2
