"""Terraform-style plan output, plan --destroy, --target/--exclude and "unknown" answers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers_cli import hello, invoke, state_url, task, write_manifest, write_procs


@pytest.fixture
def applied(tmp_path: Path) -> Path:
    write_manifest(
        tmp_path / "t.yaml",
        [
            hello("a", "one"),
            hello("b", "${VAR:a:sha256}", dependencies=[{"tasks": ["a"]}]),
            hello("c", "see"),
        ],
    )
    assert invoke(tmp_path, "apply", "-f", "t.yaml", "--state", state_url(tmp_path)).returncode == 0
    return tmp_path


def plan(workdir: Path, *args: str) -> tuple[int, list[str]]:
    result = invoke(workdir, "plan", "-f", "t.yaml", "--state", state_url(workdir), *args)
    return result.returncode, result.stdout.splitlines()


def test_plan_lists_changes_with_a_compact_diff_and_a_total(applied: Path) -> None:
    write_manifest(
        applied / "t.yaml",
        [
            hello("a", "two"),
            hello("b", "${VAR:a:sha256}", dependencies=[{"tasks": ["a"]}]),
            hello("c", "see"),
            hello("d", "new"),
        ],
    )
    code, lines = plan(applied)
    assert code == 3
    body = [re.sub(r'"[0-9a-f]{64}"', '"SHA"', line) for line in lines if line.startswith("  ")]
    assert body == [
        "  ~ update a",
        '      ~ content: "one" -> "two"',
        "  ~ update b",
        '      ~ content: "SHA" -> (known after apply)',
        "  + create d",
        '      + content = "new"',
        '      + path = "out/d.txt"',
    ]
    assert lines[0] == "opus plan in context default would:"
    assert lines[-2] == "", "one summary line, not two"
    assert re.fullmatch(
        r"Plan: 1 to create, 2 to update, 0 to delete\. \(1 unchanged in \d+\.\d\d s\)",
        lines[-1],
    )


def test_plan_diff_shows_added_and_removed_keys(tmp_path: Path, monkeypatch) -> None:
    write_procs(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    write_manifest(tmp_path / "t.yaml", [task("cli-test/slow-v1", "s", {"seconds": 0, "old": 1})])
    base = ["-p", "opus_cli_testprocs"]
    assert (
        invoke(tmp_path, *base, "apply", "-f", "t.yaml", "--state", state_url(tmp_path)).returncode
        == 0
    )
    write_manifest(
        tmp_path / "t.yaml", [task("cli-test/slow-v1", "s", {"seconds": 0, "tags": {"env": "dev"}})]
    )
    result = invoke(tmp_path, *base, "plan", "-f", "t.yaml", "--state", state_url(tmp_path))
    assert result.returncode == 3
    assert '      + tags.env = "dev"' in result.stdout.splitlines()
    assert "      - old = 1" in result.stdout.splitlines()


def test_no_changes(applied: Path) -> None:
    code, lines = plan(applied)
    assert code == 0
    assert lines[-1].startswith("No changes. Everything is up to date. (3 unchanged in ")
    assert len(lines) == 1


def test_a_plan_with_a_failed_task_does_not_say_everything_is_up_to_date(applied: Path) -> None:
    write_manifest(
        applied / "t.yaml",
        [
            hello("a", "one"),
            hello("b", "${VAR:a:nope}", dependencies=[{"tasks": ["a"]}]),  # no such output
            hello("c", "see"),
        ],
    )
    code, lines = plan(applied)
    assert code == 1
    assert lines[-1].startswith(
        "No changes planned, but the plan is incomplete. (2 unchanged, 1 failed in "
    )
    assert not any("Everything is up to date" in line for line in lines)


def test_target_and_exclude_show_in_the_plan(applied: Path) -> None:
    write_manifest(
        applied / "t.yaml",
        [
            hello("a", "two"),
            hello("b", "${VAR:a:sha256}", dependencies=[{"tasks": ["a"]}]),
            hello("c", "changed"),
        ],
    )
    code, lines = plan(applied, "--target", "c")
    assert code == 3 and "  ~ update c" in lines and "  ~ update a" not in lines
    assert "Left out by --target/--exclude: a, b" in lines
    assert lines[-1].startswith("Plan: 0 to create, 1 to update, 0 to delete. (")
    code, lines = plan(applied, "--exclude", "a")
    body = [line for line in lines if line.startswith("  ")]
    assert "  ~ update c" in body and not any(line.endswith((" a", " b")) for line in body)
    assert "Left out by --target/--exclude: a, b" in lines
    unknown = invoke(
        applied, "plan", "-f", "t.yaml", "--state", state_url(applied), "--target", "ghost"
    )
    assert unknown.returncode == 2 and "no task named 'ghost'" in unknown.stderr


def test_target_and_exclude_select_what_apply_runs(applied: Path) -> None:
    write_manifest(
        applied / "t.yaml",
        [
            hello("a", "two"),
            hello("b", "${VAR:a:sha256}", dependencies=[{"tasks": ["a"]}]),
            hello("c", "changed"),
        ],
    )
    result = invoke(
        applied,
        "apply",
        "-f",
        "t.yaml",
        "--state",
        state_url(applied),
        "--exclude",
        "a",
        "-o",
        "json",
    )
    assert result.returncode == 0 and set(json.loads(result.stdout)["tasks"]) == {"c"}
    result = invoke(
        applied,
        "apply",
        "-f",
        "t.yaml",
        "--state",
        state_url(applied),
        "--target",
        "b",
        "-o",
        "json",
    )
    tasks = json.loads(result.stdout)["tasks"]
    assert {n: t["action"] for n, t in tasks.items()} == {"a": "update", "b": "update"}
    assert (applied / "out" / "a.txt").read_text() == "two"


def test_delete_target_takes_what_depends_on_it_and_leaves_what_it_needs(applied: Path) -> None:
    """Deleting goes the other way: --target a also deletes b (it reads a's output), never
    what a needs; --exclude b keeps b and a (b still needs it)."""
    # a <- b (b depends on a); c on its own; d depends on b
    write_manifest(
        applied / "t.yaml",
        [
            hello("a", "one"),
            hello("b", "${VAR:a:sha256}", dependencies=[{"tasks": ["a"]}]),
            hello("c", "see"),
            hello("d", "${VAR:b:sha256}"),
        ],
    )
    assert invoke(applied, "apply", "-f", "t.yaml", "--state", state_url(applied)).returncode == 0
    code, lines = plan(applied, "--destroy", "--target", "b")
    assert code == 3
    assert [line for line in lines if line.startswith("  ")] == ["  - delete d", "  - delete b"]
    assert "Left out by --target/--exclude: a, c" in lines
    graph = invoke(
        applied, "graph", "-f", "t.yaml", "--command", "delete", "--target", "b", "--format",
        "text",
    )  # fmt: skip
    assert graph.returncode == 0 and "a" not in graph.stdout.split() and "d" in graph.stdout
    result = invoke(
        applied, "delete", "-f", "t.yaml", "--state", state_url(applied), "--exclude", "b",
        "--yes", "-o", "json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    deleted = {n for n, t in json.loads(result.stdout)["tasks"].items() if t["status"] == "done"}
    assert deleted == {"c", "d"}
    assert (applied / "out" / "a.txt").exists() and (applied / "out" / "b.txt").exists()
    result = invoke(
        applied, "delete", "-f", "t.yaml", "--state", state_url(applied), "--target", "b",
        "--yes", "-o", "json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert set(json.loads(result.stdout)["tasks"]) == {"b", "d"}
    assert (applied / "out" / "a.txt").read_text() == "one"
    assert not (applied / "out" / "b.txt").exists()


def test_plan_destroy_sees_the_tasks_as_delete_does(applied: Path) -> None:
    """Conditional dependencies and scopes of the delete command, not of plan: the preview
    is what delete then does."""
    write_manifest(
        applied / "t.yaml",
        [
            hello("net"),
            hello("vm", dependencies=[{"tasks": ["net"], "commands": ["delete"]}]),
            hello("only", processingScopes=[{"commands": ["apply", "delete"]}]),
        ],
    )
    assert invoke(applied, "apply", "-f", "t.yaml", "--state", state_url(applied)).returncode == 0
    code, lines = plan(applied, "--destroy", "--target", "net")
    assert code == 3
    assert [line for line in lines if line.startswith("  ")] == ["  - delete vm", "  - delete net"]
    code, lines = plan(applied, "--destroy")
    assert "  - delete only" in lines
    result = invoke(
        applied, "delete", "-f", "t.yaml", "--state", state_url(applied), "--target", "net",
        "--yes", "-o", "json",
    )  # fmt: skip
    assert set(json.loads(result.stdout)["tasks"]) == {"net", "vm"}


def test_plan_destroy_shows_what_delete_removes(applied: Path) -> None:
    write_manifest(
        applied / "t.yaml",
        [
            hello("a", "one"),
            hello("b", "${VAR:a:sha256}", dependencies=[{"tasks": ["a"]}]),
            hello("c", "see"),
            hello("never-applied"),
        ],
    )
    code, lines = plan(applied, "--destroy")
    assert code == 3
    assert [line for line in lines if line.startswith("  ")] == [
        "  - delete c",
        "  - delete b",
        "  - delete a",
    ]
    assert lines[-1].startswith("Plan: 0 to create, 0 to update, 3 to delete.")
    assert (applied / "out" / "a.txt").exists()  # nothing was deleted
    data = json.loads(
        invoke(
            applied,
            "plan",
            "--destroy",
            "-f",
            "t.yaml",
            "--state",
            state_url(applied),
            "-o",
            "json",
        ).stdout
    )
    assert data["tasks"]["never-applied"]["status"] == "unchanged"
    assert (data["tasks"]["a"]["status"], data["tasks"]["a"]["action"]) == ("planned", "delete")


def test_plan_says_unknown_when_the_processor_cannot_do_it(tmp_path: Path, monkeypatch) -> None:
    write_procs(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    base = ["-p", "opus_cli_testprocs"]
    write_manifest(tmp_path / "t.yaml", [task("cli-test/create-only-v1", "k", {"value": 1})])
    assert (
        invoke(tmp_path, *base, "apply", "-f", "t.yaml", "--state", state_url(tmp_path)).returncode
        == 0
    )
    write_manifest(tmp_path / "t.yaml", [task("cli-test/create-only-v1", "k", {"value": 2})])
    result = invoke(tmp_path, *base, "plan", "-f", "t.yaml", "--state", state_url(tmp_path))
    lines = result.stdout.splitlines()
    assert result.returncode == 3
    assert (
        "  ? update k  (unknown: CreateOnly (cli-test/create-only-v1) does not implement "
        "update; apply would fail)"
    ) in lines
    assert lines[-1].startswith("Plan: 0 to create, 0 to update, 0 to delete, 1 unknown.")
    assert "k: unknown" in result.stderr
    data = json.loads(
        invoke(
            tmp_path, *base, "plan", "-f", "t.yaml", "--state", state_url(tmp_path), "-o", "json"
        ).stdout
    )
    assert "does not implement update" in data["tasks"]["k"]["unknown"]
    drift = json.loads(
        invoke(
            tmp_path,
            *base,
            "drift",
            "-f",
            "t.yaml",
            "--state",
            state_url(tmp_path),
            "--var",
            "x=1",
            "-o",
            "json",
        ).stdout
    )
    assert drift["tasks"]["k"]["drifted"] is True  # spec drift is known even so
    write_manifest(tmp_path / "t.yaml", [task("cli-test/create-only-v1", "k", {"value": 1})])
    drift = invoke(tmp_path, *base, "drift", "-f", "t.yaml", "--state", state_url(tmp_path))
    assert drift.returncode == 0 and "1 unknown in " in drift.stdout
    described = invoke(tmp_path, *base, "describe", "-f", "t.yaml", "--state", state_url(tmp_path))
    assert "does not implement describe; from state only" in described.stdout
    assert "1 described in " in described.stdout
