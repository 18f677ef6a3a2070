"""Saved plans: ``opus plan --out FILE`` / ``opus apply --plan FILE`` and ``Engine.plan`` /
``Engine.apply_plan``. Real hello-world plugin, real files, real SQLite state."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers_cli import run_opus, write_manifest

from opus import Engine, Plugins
from opus.saved_plan import FORMAT, Plan, PlanFileError, StalePlanError


def hello(name: str, path: Path, content: str) -> dict[str, Any]:
    return {"apiVersion": "hello-world/v1", "kind": "HelloWorld", "metadata": {"name": name},
            "spec": {"path": str(path), "content": content}}  # fmt: skip


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = Engine(state=f"sqlite:///{tmp_path}/state.db", plugins=Plugins(), parallelism=4)
    yield engine
    engine.close()


def test_a_saved_plan_is_applied_exactly_then_refused_as_stale(engine, tmp_path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    assert engine.run("apply", [hello("a", a, "A")]).ok
    desired = [hello("a", a, "A2"), hello("b", b, "${VAR:a:sha256}")]
    plan = engine.plan(desired)
    assert {n: t.action for n, t in plan.tasks.items()} == {"a": "update", "b": "create"}
    assert plan.tasks["b"].basis == "absent"
    assert plan.tasks["a"].basis["run_id"] == engine.state.get("default", "a").run_id
    path = tmp_path / "plan.json"
    plan.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert a.read_text() == "A" and not b.exists(), "planning changes nothing"

    loaded = Plan.load(path)
    result = engine.apply_plan(loaded)
    assert {n: (t.status, t.action) for n, t in result.tasks.items()} == {
        "a": ("done", "update"),
        "b": ("done", "create"),
    }
    assert a.read_text() == "A2"
    assert b.read_text() == engine.state.get("default", "a").outputs["sha256"], (
        "a value known only after apply is resolved when the plan is applied"
    )
    runs_before = len(engine.state.list_runs("default", limit=100))
    with pytest.raises(StalePlanError, match="stale plan: task 'a' changed since the plan"):
        engine.apply_plan(loaded)
    assert len(engine.state.list_runs("default", limit=100)) == runs_before, "nothing ran"


def test_a_plan_of_an_unnamed_task_loads_and_applies(engine, tmp_path) -> None:
    # the library allows a task without metadata.name (it gets an id from its content);
    # its saved plan was refused on load: "missing 'metadata.name'"
    target = tmp_path / "x.txt"
    unnamed = {"apiVersion": "hello-world/v1", "kind": "HelloWorld",
               "spec": {"path": str(target), "content": "X"}}  # fmt: skip
    plan = engine.plan([unnamed])
    (name,) = plan.tasks
    path = tmp_path / "plan.json"
    plan.save(path)
    loaded = Plan.load(path)
    assert list(loaded.tasks) == [name] and loaded.manifests[0].name == name
    result = engine.apply_plan(loaded)
    assert (result.tasks[name].status, result.tasks[name].action) == ("done", "create")
    assert target.read_text() == "X"


def test_a_plan_applies_its_decision_not_a_new_one(engine, tmp_path) -> None:
    """The saved plan said "unchanged" for b: a tampered b is not repaired by it (no refresh),
    while a's planned update runs."""
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    engine.run("apply", [hello("a", a, "A"), hello("b", b, "B")])
    plan = engine.plan([hello("a", a, "A2"), hello("b", b, "B")])
    assert plan.tasks["b"].action is None
    b.write_text("tampered")  # a resource change is not a state change
    result = engine.apply_plan(Plan.from_json(plan.to_json()))
    assert result.tasks["b"].status == "unchanged" and b.read_text() == "tampered"
    assert a.read_text() == "A2"


def test_a_plan_with_prune_deletes_the_orphan(engine, tmp_path) -> None:
    a, gone = tmp_path / "a.txt", tmp_path / "gone.txt"
    engine.run("apply", [hello("a", a, "A"), hello("gone", gone, "G")])
    plan = engine.plan([hello("a", a, "A")], prune=True)
    assert plan.tasks["gone"].action == "delete" and plan.tasks["gone"].orphan
    result = engine.apply_plan(Plan.from_json(plan.to_json()))
    assert result.tasks["gone"].action == "delete" and not gone.exists()
    assert engine.state.get("default", "gone") is None


def test_bad_plan_files_are_refused(tmp_path) -> None:
    with pytest.raises(PlanFileError, match="not an opus plan"):
        Plan.from_json('{"tasks": {}}')
    with pytest.raises(PlanFileError, match="not JSON"):
        Plan.from_json("apiVersion: v1")
    with pytest.raises(PlanFileError, match="newer than this opus reads"):
        Plan.from_json(json.dumps({"format": "opus.plan/v2"}))


# -- CLI ---------------------------------------------------------------------------------------


def _cli_setup(tmp_path: Path, content: str) -> Path:
    return write_manifest(tmp_path / "tasks.yaml", [hello("a", tmp_path / "a.txt", content)])


def test_cli_plan_out_then_apply_plan_then_stale(tmp_path) -> None:
    manifest = _cli_setup(tmp_path, "A")
    assert run_opus(tmp_path, "apply", "-f", str(manifest), plugins=()).returncode == 0
    _cli_setup(tmp_path, "A2")
    made = run_opus(tmp_path, "plan", "-f", str(manifest), "--out", "plan.json", plugins=())
    assert made.returncode == 3, made.stderr
    doc = json.loads((tmp_path / "plan.json").read_text())
    assert doc["format"] == FORMAT and doc["tasks"]["a"]["action"] == "update"
    assert doc["tasks"]["a"]["spec"]["content"] == "A2"
    assert set(doc["tasks"]["a"]["based_on"]) == {"spec_checksum", "updated_at", "run_id",
                                                  "status"}  # fmt: skip
    assert stat.S_IMODE((tmp_path / "plan.json").stat().st_mode) == 0o600
    _cli_setup(tmp_path, "ignored")  # the manifests are not read again
    applied = run_opus(tmp_path, "apply", "--plan", "plan.json", "-o", "json", plugins=())
    assert applied.returncode == 0, applied.stderr
    assert json.loads(applied.stdout)["tasks"]["a"]["action"] == "update"
    assert (tmp_path / "a.txt").read_text() == "A2"

    again = run_opus(tmp_path, "apply", "--plan", "plan.json", plugins=())
    assert again.returncode == 2
    assert "stale plan: task 'a' changed since the plan was made (run " in again.stderr
    assert "Traceback" not in again.stderr


def test_cli_refuses_a_tampered_or_foreign_plan_and_bad_usage(tmp_path) -> None:
    manifest = _cli_setup(tmp_path, "A")
    made = run_opus(tmp_path, "plan", "-f", str(manifest), "--out", "plan.json", plugins=())
    assert made.returncode == 3, made.stderr
    doc = json.loads((tmp_path / "plan.json").read_text())
    doc["tasks"]["a"]["spec"]["content"] = "evil"
    (tmp_path / "edited.json").write_text(json.dumps(doc))
    edited = run_opus(tmp_path, "apply", "--plan", "edited.json", plugins=())
    assert edited.returncode == 2 and "modified after opus wrote it" in edited.stderr
    newer = dict(doc, format="opus.plan/v9")
    (tmp_path / "newer.json").write_text(json.dumps(newer))
    refused = run_opus(tmp_path, "apply", "--plan", "newer.json", plugins=())
    assert refused.returncode == 2 and "newer than this opus reads" in refused.stderr
    (tmp_path / "other.json").write_text('{"hello": 1}')
    other = run_opus(tmp_path, "apply", "--plan", "other.json", plugins=())
    assert other.returncode == 2 and "is not an opus plan" in other.stderr
    both = run_opus(tmp_path, "apply", "--plan", "plan.json", "-f", str(manifest), plugins=())
    assert both.returncode == 2 and "-f/--file cannot be used with --plan" in both.stderr
    assert not (tmp_path / "a.txt").exists(), "nothing ran"
    neither = run_opus(tmp_path, "apply", plugins=())
    assert neither.returncode == 2 and "Missing option '-f'" in neither.stderr


def test_cli_plan_usage_errors_and_no_file_after_a_failed_plan(tmp_path) -> None:
    manifest = _cli_setup(tmp_path, "A")
    assert run_opus(tmp_path, "apply", "-f", str(manifest), plugins=()).returncode == 0
    made = run_opus(tmp_path, "plan", "-f", str(manifest), "--out", "plan.json", plugins=())
    assert made.returncode == 0, made.stderr  # nothing to change: a plan of no changes
    for extra in (["--var", "x=1"], ["--context", "prod"], ["--no-refresh"], ["--target", "a"]):
        used = run_opus(tmp_path, "apply", "--plan", "plan.json", *extra, plugins=())
        assert used.returncode == 2 and "cannot be used with --plan" in used.stderr, extra
    destroy = run_opus(tmp_path, "plan", "-f", str(manifest), "--destroy", "--out", "d.json",
                       plugins=())  # fmt: skip
    assert destroy.returncode == 2 and "--out cannot be combined with --destroy" in destroy.stderr
    # a refresh that fails (a directory where the file was): the plan is not saved
    (tmp_path / "a.txt").unlink()
    (tmp_path / "a.txt").mkdir()
    failed = run_opus(tmp_path, "plan", "-f", str(manifest), "--out", "bad.json", plugins=())
    assert failed.returncode == 1 and "plan not saved to bad.json" in failed.stderr
    assert not (tmp_path / "bad.json").exists() and not (tmp_path / "d.json").exists()


def test_a_saved_plan_prunes_only_the_orphans_it_listed(engine, tmp_path) -> None:
    a, old, later = tmp_path / "a.txt", tmp_path / "old.txt", tmp_path / "later.txt"
    engine.run("apply", [hello("a", a, "A"), hello("old", old, "O")])
    plan = engine.plan([hello("a", a, "A")], prune=True)
    assert [n for n, t in plan.tasks.items() if t.orphan] == ["old"]
    # another apply records a task the plan never saw (an orphan of the plan's manifests)
    engine.run("apply", [hello("a", a, "A"), hello("old", old, "O"), hello("later", later, "L")])
    result = engine.apply_plan(Plan.from_json(plan.to_json()))
    assert result.tasks["old"].action == "delete" and not old.exists()
    assert "later" not in result.tasks and later.exists(), "not in the plan: not pruned"
    assert result.orphans == ["later", "old"]
