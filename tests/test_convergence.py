"""apply converges: refresh repairs drift, replacement, recorded-spec deletes, orphans and
prune, plan --destroy in the engine. Real plugin packages, real files, real SQLite state."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers_cli import run_opus, write_manifest
from support_processors import RecordingProcessor, make_task

from opus import Engine, Plugins


def hello(name: str, path: Path, content: str | None = None, after: str | None = None) -> dict:
    spec: dict[str, Any] = {"path": str(path)}
    if content is not None:
        spec["content"] = content
    metadata: dict[str, Any] = {"name": name}
    if after:
        metadata["dependencies"] = [{"tasks": [after]}]
    return {"apiVersion": "hello-world/v1", "kind": "HelloWorld", "metadata": metadata,
            "spec": spec}  # fmt: skip


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    plugins = Plugins(entry_points=True)
    engine = Engine(state=f"sqlite:///{tmp_path}/state.db", plugins=plugins, parallelism=4)
    yield engine
    engine.close()


def outcome(result: Any, name: str) -> tuple[str, str | None]:
    task = result.tasks[name]
    return (task.status, task.action)


# -- refresh -----------------------------------------------------------------------------------


def test_apply_repairs_a_tampered_file_and_recreates_a_deleted_one(engine, tmp_path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    tasks = [hello("a", a, "A"), hello("b", b, "B")]
    assert engine.run("apply", tasks).ok
    a.write_text("tampered")
    b.unlink()

    plan = engine.run("plan", tasks)
    assert outcome(plan, "a") == ("planned", "update")
    assert plan.tasks["a"].drifted is True
    assert plan.tasks["a"].details == {"reason": f"drifted: {a} content changed"}
    assert outcome(plan, "b") == ("planned", "create")
    assert plan.tasks["b"].details == {"reason": f"gone: {b} is missing"}
    assert a.read_text() == "tampered" and not b.exists(), "plan changes nothing"

    result = engine.run("apply", tasks)
    assert outcome(result, "a") == ("done", "update") and result.tasks["a"].drifted is True
    assert outcome(result, "b") == ("done", "create")
    assert a.read_text() == "A" and b.read_text() == "B"
    again = engine.run("apply", tasks)
    assert {t.status for t in again.tasks.values()} == {"unchanged"}


def test_no_refresh_trusts_state(engine, tmp_path) -> None:
    a = tmp_path / "a.txt"
    engine.run("apply", [hello("a", a, "A")])
    a.write_text("tampered")
    assert outcome(engine.run("plan", [hello("a", a, "A")], refresh=False), "a") == (
        "unchanged",
        None,
    )
    result = engine.run("apply", [hello("a", a, "A")], refresh=False)
    assert outcome(result, "a") == ("unchanged", None)
    assert a.read_text() == "tampered"


def test_a_failing_refresh_fails_the_task_not_the_run(engine, tmp_path) -> None:
    a = tmp_path / "d" / "a.txt"
    engine.run("apply", [hello("a", a, "A"), hello("b", tmp_path / "b.txt", "B")])
    # a directory where the file was: detect_drift cannot read it
    a.unlink()
    a.mkdir()
    result = engine.run(
        "apply", [hello("a", a, "A"), hello("b", tmp_path / "b.txt", "B")], keep_going=True
    )
    assert outcome(result, "a")[0] == "failed"
    assert "refresh (detect_drift) failed" in (result.tasks["a"].error or "")
    assert outcome(result, "b") == ("unchanged", None)


# -- replacement and the recorded spec ---------------------------------------------------------


def test_a_changed_path_replaces_and_leaves_no_old_file(engine, tmp_path) -> None:
    old, new = tmp_path / "old.txt", tmp_path / "new.txt"
    engine.run("apply", [hello("a", old, "A")])
    plan = engine.run("plan", [hello("a", new, "A")])
    assert outcome(plan, "a") == ("planned", "replace")
    assert plan.tasks["a"].details == {"reason": "path changed"}
    result = engine.run("apply", [hello("a", new, "A")])
    assert outcome(result, "a") == ("done", "replace")
    assert not old.exists() and new.read_text() == "A"
    record = engine.state.get("default", "a")
    assert record is not None and record.applied_spec == {"path": str(new), "content": "A"}
    assert [h.action for h in engine.state.history("default", "a")][:1] == ["replace"]


def _file_at_variable() -> dict:
    return {"apiVersion": "file/v1", "kind": "File", "metadata": {"name": "f"},
            "spec": {"path": "${VAR:p}", "content": "x\n"}}  # fmt: skip


def test_a_replace_whose_new_spec_is_invalid_deletes_nothing(engine, tmp_path) -> None:
    # the raw spec is valid (a reference); what it resolves to is not: found before the
    # old file is deleted, and the record stays what it was
    old = tmp_path / "old.txt"
    assert engine.run("apply", [_file_at_variable()], variables={"p": str(old)}).ok
    before = engine.state.get("default", "f")
    result = engine.run("apply", [_file_at_variable()], variables={"p": ""})
    task = result.tasks["f"]
    assert (task.status, task.action) == ("failed", "apply")
    assert "not replaced" in task.error and "spec.path" in task.error
    assert "left as it is" in task.error
    assert old.read_text() == "x\n"
    after = engine.state.get("default", "f")
    assert after is not None and after.applied_spec == before.applied_spec
    assert after.status == before.status


def test_a_replace_whose_create_fails_says_the_old_resource_is_gone(engine, tmp_path) -> None:
    old = tmp_path / "old.txt"
    (tmp_path / "blocker").write_text("a file, not a directory")
    assert engine.run("apply", [_file_at_variable()], variables={"p": str(old)}).ok
    bad = str(tmp_path / "blocker" / "x.txt")
    result = engine.run("apply", [_file_at_variable()], variables={"p": bad})
    task = result.tasks["f"]
    assert task.action == "replace" and task.status in ("failed", "rolled_back")
    assert "a rollback does not bring back" in task.error
    assert not old.exists()
    new = tmp_path / "new.txt"  # the next apply creates it anew
    again = engine.run("apply", [_file_at_variable()], variables={"p": str(new)})
    assert again.ok and new.read_text() == "x\n"


def test_delete_after_a_spec_change_deletes_what_was_applied(engine, tmp_path) -> None:
    old, new = tmp_path / "old.txt", tmp_path / "new.txt"
    engine.run("apply", [hello("a", old, "A")])
    result = engine.run("delete", [hello("a", new, "A")])  # the manifest moved on; state not
    assert outcome(result, "a") == ("done", "delete")
    assert not old.exists() and not new.exists()
    assert engine.state.get("default", "a") is None


def test_file_v1_delete_and_replace_act_on_the_recorded_path(engine, tmp_path) -> None:
    def file_task(path: Path) -> dict:
        return {"apiVersion": "file/v1", "kind": "File", "metadata": {"name": "f"},
                "spec": {"path": str(path), "content": "x\n"}}  # fmt: skip

    one, two, three = tmp_path / "1.txt", tmp_path / "2.txt", tmp_path / "3.txt"
    engine.run("apply", [file_task(one)])
    result = engine.run("apply", [file_task(two)])
    assert outcome(result, "f") == ("done", "replace")
    assert not one.exists() and two.read_text() == "x\n"
    engine.run("delete", [file_task(three)])
    assert not two.exists() and not three.exists()


# -- orphans -----------------------------------------------------------------------------------


def chain(tmp_path: Path) -> list[dict]:
    return [
        hello("db", tmp_path / "db.txt", "db"),
        hello("app", tmp_path / "app.txt", "app", after="db"),
        hello("web", tmp_path / "web.txt", "web", after="app"),
    ]


def test_orphans_are_reported_and_pruned_only_when_asked(engine, tmp_path) -> None:
    keep = hello("keep", tmp_path / "keep.txt", "k")
    engine.run("apply", [*chain(tmp_path), keep])
    assert engine.state.get("default", "app").dependencies == ("db",)  # type: ignore[union-attr]

    result = engine.run("apply", [keep])
    assert result.orphans == ["app", "db", "web"]
    assert list(result.tasks) == ["keep"]
    assert (tmp_path / "db.txt").exists(), "nothing deleted without prune"

    plan = engine.run("plan", [keep], prune=True)
    assert {n: outcome(plan, n) for n in ("db", "app", "web")} == {
        n: ("planned", "delete") for n in ("db", "app", "web")
    }
    assert plan.tasks["db"].details == {"reason": "no longer in manifests"}
    assert (tmp_path / "db.txt").exists()

    result = engine.run("apply", [keep], prune=True)
    assert result.ok and result.orphans == ["app", "db", "web"]
    assert [outcome(result, n) for n in ("web", "app", "db")] == [("done", "delete")] * 3
    finished = sorted(("web", "app", "db"), key=lambda n: result.tasks[n].finished_at or 0)
    assert finished == ["web", "app", "db"], "reverse dependency order"
    assert not any((tmp_path / f"{n}.txt").exists() for n in ("db", "app", "web"))
    assert [r.name for r in engine.state.list_records("default")] == ["keep"]
    assert (tmp_path / "keep.txt").read_text() == "k"


def test_targets_never_prune(engine, tmp_path, caplog) -> None:
    keep = hello("keep", tmp_path / "keep.txt", "k")
    engine.run("apply", [hello("gone", tmp_path / "gone.txt", "g"), keep])
    with caplog.at_level(logging.WARNING, logger="opus"):
        result = engine.run("apply", [keep], targets=["keep"], prune=True)
    assert result.orphans == ["gone"] and "gone" not in result.tasks
    assert (tmp_path / "gone.txt").exists()
    assert "never pruned" in caplog.text


def test_an_orphan_whose_processor_is_gone_fails_alone(tmp_path) -> None:
    url = f"sqlite:///{tmp_path}/state.db"
    with Engine(state=url, plugins=Plugins(entry_points=True)) as engine:
        engine.run("apply", [hello("gone", tmp_path / "gone.txt", "g")])
    plugins = Plugins(entry_points=True, disabled=["hello_world"])
    names = {info["name"] for info in plugins.describe()["plugins"]}
    assert not any("hello" in n for n in names), names
    with Engine(state=url, plugins=plugins) as engine:
        other = {"apiVersion": "file/v1", "kind": "File", "metadata": {"name": "f"},
                 "spec": {"path": str(tmp_path / "f.txt"), "content": "f"}}  # fmt: skip
        result = engine.run("apply", [other], prune=True)
    assert not result.ok
    assert result.tasks["gone"].status == "failed"
    assert "processor is not installed" in (result.tasks["gone"].error or "")
    assert "hello-world/v1" in (result.tasks["gone"].error or "")
    assert outcome(result, "f") == ("done", "create")
    assert (tmp_path / "gone.txt").exists()


# -- plan --destroy ----------------------------------------------------------------------------


def test_plan_destroy_is_an_engine_run(engine, tmp_path) -> None:
    tasks = chain(tmp_path)
    engine.run("apply", tasks[:2])
    plan = engine.run("plan", tasks, destroy=True)
    assert list(plan.tasks) == ["web", "app", "db"]
    assert outcome(plan, "app") == outcome(plan, "db") == ("planned", "delete")
    assert outcome(plan, "web") == ("unchanged", None)
    assert (tmp_path / "db.txt").exists()
    assert engine.state.list_runs("default", limit=1)[0].command == "plan"


# -- the CLI -----------------------------------------------------------------------------------


def test_cli_plan_shows_why_then_apply_repairs(tmp_path: Path) -> None:
    files = write_manifest(tmp_path / "t.yaml", chain(tmp_path))
    assert run_opus(tmp_path, "apply", "-f", str(files), plugins=()).returncode == 0
    (tmp_path / "app.txt").write_text("tampered")
    (tmp_path / "db.txt").unlink()

    drift = run_opus(tmp_path, "drift", "-f", str(files), plugins=())
    assert drift.returncode == 3
    assert f"app: drifted: {tmp_path / 'app.txt'} content changed" in drift.stdout
    assert f"db: drifted: {tmp_path / 'db.txt'} is missing" in drift.stdout

    plan = run_opus(tmp_path, "plan", "-f", str(files), plugins=())
    assert plan.returncode == 3
    assert f"~ update app (drifted: {tmp_path / 'app.txt'} content changed)" in plan.stdout
    assert f"+ create db (gone: {tmp_path / 'db.txt'} is missing)" in plan.stdout

    report = json.loads(
        run_opus(tmp_path, "plan", "-f", str(files), "-o", "json", plugins=()).stdout
    )
    assert report["tasks"]["app"]["drifted"] is True and report["orphans"] == []

    no_refresh = run_opus(tmp_path, "apply", "-f", str(files), "--no-refresh", plugins=())
    assert no_refresh.returncode == 0 and (tmp_path / "app.txt").read_text() == "tampered"
    env_off = run_opus(tmp_path, "plan", "-f", str(files), plugins=(), env={"OPUS_REFRESH": "0"})
    assert env_off.returncode == 0, env_off.stdout

    assert run_opus(tmp_path, "apply", "-f", str(files), plugins=()).returncode == 0
    assert (tmp_path / "app.txt").read_text() == "app" and (tmp_path / "db.txt").exists()
    assert run_opus(tmp_path, "drift", "-f", str(files), plugins=()).returncode == 0


def test_cli_orphans_warning_json_and_prune(tmp_path: Path) -> None:
    everything = write_manifest(tmp_path / "all.yaml", chain(tmp_path))
    only_db = write_manifest(tmp_path / "db.yaml", chain(tmp_path)[:1])
    assert run_opus(tmp_path, "apply", "-f", str(everything), plugins=()).returncode == 0

    plan = run_opus(tmp_path, "plan", "-f", str(only_db), plugins=())
    assert plan.returncode == 0
    assert "in state but no longer in the manifests: app, web (--prune deletes them)" in (
        plan.stderr
    )
    report = json.loads(run_opus(tmp_path, "apply", "-f", str(only_db), "-o", "json",
                                 plugins=()).stdout)  # fmt: skip
    assert report["orphans"] == ["app", "web"] and list(report["tasks"]) == ["db"]
    assert (tmp_path / "web.txt").exists()

    plan = run_opus(tmp_path, "plan", "-f", str(only_db), "--prune", plugins=())
    assert plan.returncode == 3
    assert "- delete web (no longer in manifests)" in plan.stdout
    assert "- delete app (no longer in manifests)" in plan.stdout

    targeted = run_opus(tmp_path, "apply", "-f", str(only_db), "--prune", "--target", "db",
                        plugins=())  # fmt: skip
    assert targeted.returncode == 0 and "--prune is ignored" in targeted.stderr
    assert (tmp_path / "web.txt").exists()

    pruned = run_opus(tmp_path, "apply", "-f", str(only_db), "--prune", "--yes", plugins=())
    assert pruned.returncode == 0, pruned.stderr
    assert not (tmp_path / "web.txt").exists() and not (tmp_path / "app.txt").exists()
    assert (tmp_path / "db.txt").exists()


def test_cli_says_which_orphans_were_pruned_and_which_were_not(tmp_path: Path) -> None:
    def file_task(name: str) -> dict:
        return {"apiVersion": "file/v1", "kind": "File", "metadata": {"name": name},
                "spec": {"path": str(tmp_path / f"{name}.txt"), "content": name}}  # fmt: skip

    first = write_manifest(tmp_path / "first.yaml", [hello("gone", tmp_path / "g.txt", "g"),
                                                     file_task("old")])  # fmt: skip
    assert run_opus(tmp_path, "apply", "-f", str(first), plugins=()).returncode == 0
    later = write_manifest(tmp_path / "later.yaml", [file_task("new")])
    # hello_world disabled: the orphan 'gone' cannot be deleted and stays in state
    done = run_opus(tmp_path, "--disable-plugin", "hello_world", "apply", "-f", str(later),
                    "--prune", "--yes", plugins=())  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "pruned (no longer in the manifests): old\n" in done.stderr
    assert "not pruned (failed, still in state): gone" in done.stderr
    assert not (tmp_path / "old.txt").exists() and (tmp_path / "g.txt").exists()


def test_cli_plan_destroy_and_replace(tmp_path: Path) -> None:
    files = write_manifest(tmp_path / "t.yaml", chain(tmp_path))
    run_opus(tmp_path, "apply", "-f", str(files), plugins=())
    destroy = run_opus(tmp_path, "plan", "--destroy", "-f", str(files), plugins=())
    assert destroy.returncode == 3
    assert "Plan: 0 to create, 0 to update, 3 to delete." in destroy.stdout

    moved = chain(tmp_path)
    moved[2]["spec"]["path"] = str(tmp_path / "www.txt")
    files = write_manifest(tmp_path / "t.yaml", moved)
    plan = run_opus(tmp_path, "plan", "-f", str(files), plugins=())
    assert plan.returncode == 3
    assert "-/+ replace web (path changed)" in plan.stdout
    assert "1 to replace" in plan.stdout
    report = json.loads(run_opus(tmp_path, "apply", "-f", str(files), "-o", "json", "--yes",
                                 plugins=()).stdout)  # fmt: skip
    assert report["tasks"]["web"]["action"] == "replace"
    assert not (tmp_path / "web.txt").exists() and (tmp_path / "www.txt").read_text() == "web"


# -- what ctx.spec is, with a recording processor ----------------------------------------------


class Secretive(RecordingProcessor):
    """Masks ``token`` in what state keeps."""

    api_version = "secret/v1"

    def redact(self, spec):  # type: ignore[no-untyped-def]
        return {**spec, "token": "***"} if "token" in spec else spec


def test_delete_rollback_and_prune_get_the_recorded_spec_with_secrets_from_the_manifest() -> None:
    proc = Secretive()
    with Engine(state="memory://", plugins=Plugins(entry_points=False)) as engine:
        engine.register_processor(proc)
        v1 = make_task("t", "secret/v1", spec={"value": 1, "token": "s1"})
        v2 = make_task("t", "secret/v1", spec={"value": 2, "token": "s1", "fail_on": ["update"]})
        engine.run("apply", [v1])
        proc.calls.clear()
        result = engine.run("apply", [v2])
        assert result.tasks["t"].status == "rolled_back"
        by_action = {a: spec for a, _, spec in proc.calls}
        assert by_action["detect_drift"] == {"value": 1, "token": "s1"}  # refresh: recorded
        assert by_action["update"]["value"] == 2
        assert by_action["rollback"] == {"value": 1, "token": "s1"}  # undo: recorded
        assert proc.contexts[-1].desired_spec == dict(v2.spec)

        proc.calls.clear()
        engine.run("delete", [make_task("t", "secret/v1", spec={"value": 3, "token": "s2"})])
        assert proc.calls == [("delete", "t", {"value": 1, "token": "s2"})]

        engine.run("apply", [v1])
        proc.calls.clear()
        result = engine.run("apply", [], prune=True)
        assert result.orphans == ["t"]
        assert proc.calls == [("delete", "t", {"value": 1, "token": "***"})]  # stays masked
        assert proc.contexts[-1].desired_spec is None


def test_refresh_runs_in_parallel_under_the_same_limit() -> None:
    import threading
    import time

    class Slow(RecordingProcessor):
        api_version = "slow/v1"
        max_concurrency = 2

        def __init__(self) -> None:
            super().__init__()
            self.running = 0
            self.peak = 0
            self.lock = threading.Lock()

        def detect_drift(self, task, ctx):  # type: ignore[no-untyped-def]
            with self.lock:
                self.running += 1
                self.peak = max(self.peak, self.running)
            time.sleep(0.05)
            with self.lock:
                self.running -= 1
            return False

    proc = Slow()
    tasks = [make_task(f"t{i}", "slow/v1", spec={"i": i}) for i in range(6)]
    with Engine(state="memory://", plugins=Plugins(entry_points=False), parallelism=8) as engine:
        engine.register_processor(proc)
        engine.run("apply", tasks)
        result = engine.run("apply", tasks)
    assert {t.status for t in result.tasks.values()} == {"unchanged"}
    assert proc.peak == 2, "in parallel, never past the processor's max_concurrency"


# -- a recorded task that the manifest now gives another apiVersion ------------------------


class MadeByA(RecordingProcessor):
    api_version = "a/v1"


class MadeByB(RecordingProcessor):
    api_version = "b/v1"


def test_a_changed_api_version_is_a_replace_through_both_processors() -> None:
    a, b = MadeByA(), MadeByB()
    with Engine(state="memory://", plugins=Plugins(entry_points=False)) as engine:
        engine.register_processor(a)
        engine.register_processor(b)
        assert engine.run("apply", [make_task("t", api_version="a/v1", spec={"value": 1})]).ok
        moved = make_task("t", api_version="b/v1", spec={"value": 2})
        plan = engine.run("plan", [moved])
        assert (plan.tasks["t"].status, plan.tasks["t"].action) == ("planned", "replace")
        assert plan.tasks["t"].details == {"reason": "apiVersion changed (was a/v1)"}
        assert b.calls == []  # b never refreshes what a made
        result = engine.run("apply", [moved])
        assert (result.tasks["t"].status, result.tasks["t"].action) == ("done", "replace")
        assert [c[0] for c in a.calls] == ["create", "delete"]
        assert a.calls[-1] == ("delete", "t", {"value": 1})
        assert b.calls == [("create", "t", {"value": 2})]
        record = engine.state.get("default", "t")
        assert record is not None and record.api_version == "b/v1"


def test_delete_goes_to_the_processor_that_made_the_resource() -> None:
    a, b = MadeByA(), MadeByB()
    with Engine(state="memory://", plugins=Plugins(entry_points=False)) as engine:
        engine.register_processor(a)
        engine.register_processor(b)
        assert engine.run("apply", [make_task("t", api_version="a/v1", spec={"value": 1})]).ok
        result = engine.run("delete", [make_task("t", api_version="b/v1", spec={"value": 2})])
        assert (result.tasks["t"].status, result.tasks["t"].action) == ("done", "delete")
        assert a.calls[-1] == ("delete", "t", {"value": 1}) and b.calls == []
        assert engine.state.get("default", "t") is None


def test_a_changed_api_version_whose_old_processor_is_gone_fails_and_keeps_the_record() -> None:
    a = MadeByA()
    with Engine(state="memory://", plugins=Plugins(entry_points=False)) as engine:
        engine.register_processor(a)
        assert engine.run("apply", [make_task("t", api_version="a/v1", spec={"value": 1})]).ok
        state = engine.state
    b = MadeByB()
    with Engine(state=state, plugins=Plugins(entry_points=False)) as engine:
        engine.register_processor(b)
        result = engine.run("apply", [make_task("t", api_version="b/v1", spec={"value": 2})])
        task = result.tasks["t"]
        assert task.status == "failed" and "not replaced" in task.error
        assert "apiVersion 'a/v1', whose processor is not installed" in task.error
        assert b.calls == []  # nothing created while the old resource may still exist
        record = engine.state.get("default", "t")
        assert record is not None and record.api_version == "a/v1"
