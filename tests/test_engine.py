from __future__ import annotations

import pytest
from support_processors import RecordingProcessor, make_task

from opus import Engine, Plugins, Result, Task, TaskProcessor, Tasks, VariableError
from opus.state.memory import MemoryStateBackend


def chain() -> list[Task]:
    return [
        make_task("db", spec={"value": 5432}),
        make_task("app", spec={"value": "${VAR:db:value}", "label": "port ${VAR:db:value}"}),
        make_task("web", spec={"value": "${VAR:app:value}"}),
    ]


def test_outputs_flow_to_dependents_keeping_their_type(engine, processor) -> None:
    result = engine.run("create", chain(), context="dev")
    assert result.ok
    assert processor.names("create") == ["db", "app", "web"]
    app_spec = processor.calls[1][2]
    assert app_spec["value"] == 5432 and app_spec["label"] == "port 5432"
    assert result.tasks["web"].outputs == {"value": 5432, "name": "web"}
    assert result.to_dict()["tasks"]["db"]["status"] == "done"


def test_apply_creates_then_is_unchanged_then_updates(engine, processor) -> None:
    first = engine.run("apply", chain(), context="dev")
    assert [t.action for t in first.tasks.values()] == ["create"] * 3
    second = engine.run("apply", chain(), context="dev")
    assert {t.status for t in second.tasks.values()} == {"unchanged"}
    assert second.tasks["web"].outputs["value"] == 5432  # outputs come from state
    tasks = chain()
    tasks[0] = make_task("db", spec={"value": 6543})
    third = engine.run("apply", tasks, context="dev")
    # an upstream output change changes downstream resolved specs: all three update
    assert [t.action for t in third.tasks.values()] == ["update"] * 3
    assert third.tasks["web"].outputs["value"] == 6543


def test_contexts_have_separate_state(engine) -> None:
    engine.run("apply", chain(), context="dev")
    other = engine.run("apply", chain(), context="prod")
    assert {t.action for t in other.tasks.values()} == {"create"}
    assert engine.state.get("dev", "db") is not None and engine.state.get("prod", "db") is not None


def test_processor_sees_previous_record_as_ctx_state(engine, processor) -> None:
    engine.run("apply", chain(), context="dev")
    tasks = chain()
    tasks[0] = make_task("db", spec={"value": 1})
    engine.run("apply", tasks, context="dev")
    update_ctx = [c for c in processor.contexts if c.action == "update"][0]
    assert update_ctx.state is not None and update_ctx.state.applied_spec == {"value": 5432}
    assert update_ctx.state.resource_checksum == "rc-db"
    assert update_ctx.variables["opus.context"] == "dev"


def test_plan_executes_nothing_and_marks_unknown_values(engine, processor) -> None:
    engine.run("apply", chain(), context="dev")
    processor.calls.clear()
    tasks = chain()
    tasks[0] = make_task("db", spec={"value": 1})
    plan = engine.run("plan", tasks + [make_task("new")], context="dev")
    # only the read-only refresh of what is recorded, with the recorded specs
    assert sorted(processor.calls) == sorted(
        [("detect_drift", "db", {"value": 5432})]
        + [(c[0], c[1], c[2]) for c in processor.calls if c[1] in ("app", "web")]
    )
    assert {c[0] for c in processor.calls} == {"detect_drift"}
    assert {n: (t.status, t.action) for n, t in plan.tasks.items()} == {
        "db": ("planned", "update"),
        "app": ("planned", "update"),
        "web": ("planned", "update"),
        "new": ("planned", "create"),
    }
    assert plan.tasks["db"].diff == {"added": {}, "removed": {}, "changed": {"value": [5432, 1]}}
    assert plan.tasks["app"].diff["changed"]["value"][1] == "(known after apply)"
    assert plan.changed
    assert not engine.run("plan", chain(), context="dev").changed


def test_delete_runs_in_reverse_order_and_forgets_state(engine, processor) -> None:
    engine.run("apply", chain(), context="dev")
    result = engine.run("delete", chain(), context="dev")
    assert result.ok and processor.names("delete") == ["web", "app", "db"]
    # dependents still resolve their specs from the recorded outputs of their dependencies
    assert processor.calls[-3][2]["value"] == 5432
    assert engine.state.list_records("dev") == []


def test_drift_reports_spec_and_resource_drift(engine) -> None:
    engine.run("apply", [make_task("a", spec={"value": 1}), make_task("b")], context="dev")
    result = engine.run(
        "drift",
        [make_task("a", spec={"value": 2}), make_task("b", spec={"drifted": True}), make_task("c")],
        context="dev",
    )
    a, b, c = result.tasks["a"], result.tasks["b"], result.tasks["c"]
    assert (a.drifted, a.spec_drift, a.resource_drift) == (True, True, False)
    assert a.details["spec_diff"]["changed"] == {"value": [1, 2]}
    assert b.drifted is True and b.resource_drift is True
    assert c.drifted is True and "not in state" in c.details["reason"]
    assert result.drifted
    assert not engine.run("drift", [make_task("a", spec={"value": 1})], context="dev").drifted


def test_drift_is_unknown_when_the_processor_cannot_tell(engine) -> None:
    task = make_task("x", api_version="create-only/v1")
    engine.run("apply", [task], context="dev")
    outcome = engine.run("drift", [task], context="dev").tasks["x"]
    assert outcome.status == "done" and outcome.drifted is None


def test_describe_returns_the_record(engine) -> None:
    engine.run("apply", chain(), context="dev")
    outcome = engine.run("describe", chain(), context="dev").tasks["db"]
    assert outcome.details["state"]["outputs"] == {"value": 5432, "name": "db"}


def test_failure_rolls_back_skips_dependents_and_stops(engine, processor) -> None:
    tasks = [
        make_task("a", spec={"fail_on": ["create"]}),
        make_task("b", dependencies=[{"tasks": ["a"]}]),
        make_task("c"),
    ]
    engine.parallelism = 1
    result = engine.run("create", tasks, context="dev")
    assert not result.ok
    a, b, c = result.tasks["a"], result.tasks["b"], result.tasks["c"]
    assert a.status == "rolled_back" and "a refused to create" in a.error
    assert b.status == "skipped" and "dependency 'a'" in b.error
    assert c.status == "skipped" and "stopped" in c.error
    rollback = [x for x in processor.contexts if x.action == "rollback"][0]
    assert rollback.failed_action == "create" and "refused" in rollback.error
    record = engine.state.get("dev", "a")
    assert record.status == "failed" and record.spec_checksum is None
    # the next apply creates it again (nothing was applied)
    ok = engine.run("apply", [make_task("a")], context="dev")
    assert ok.tasks["a"].action == "create" and ok.ok


def test_keep_going_runs_independent_branches(engine) -> None:
    tasks = [
        make_task("a", spec={"fail_on": ["create"]}),
        make_task("b", dependencies=[{"tasks": ["a"]}]),
        make_task("c"),
    ]
    engine.parallelism = 1
    result = engine.run("create", tasks, context="dev", keep_going=True)
    assert [result.tasks[n].status for n in "abc"] == ["rolled_back", "skipped", "done"]


def test_no_auto_rollback_and_failing_rollback(engine, processor) -> None:
    result = engine.run(
        "create", [make_task("a", autoRollback=False, spec={"fail_on": ["create"]})], context="dev"
    )
    assert result.tasks["a"].status == "failed" and processor.names("rollback") == []
    result = engine.run(
        "create", [make_task("b", spec={"fail_on": ["create", "rollback"]})], context="dev"
    )
    error = result.tasks["b"].error
    assert result.tasks["b"].status == "failed"
    assert (
        "b refused to create" in error
        and "rollback also failed: RuntimeError: b refused to rollback" in error
    )


def test_unresolvable_output_fails_the_task_with_path(engine) -> None:
    tasks = [make_task("a"), make_task("b", spec={"x": "${VAR:a:nope}"})]
    result = engine.run("create", tasks, context="dev")
    assert result.tasks["b"].status == "failed"
    assert "spec.x" in result.tasks["b"].error and "no output 'nope'" in result.tasks["b"].error


def test_undefined_user_variable_stops_everything_before_running(engine, processor) -> None:
    with pytest.raises(VariableError, match="variable 'region' is not defined"):
        engine.run(
            "apply", [make_task("a"), make_task("b", spec={"r": "${VAR:region}"})], context="dev"
        )
    assert processor.calls == []
    ok = engine.run(
        "apply",
        [make_task("b", spec={"r": "${VAR:region}"})],
        context="dev",
        variables={"region": "eu"},
    )
    assert ok.ok


def test_duplicate_names_are_rejected(engine) -> None:
    from opus import ManifestError

    with pytest.raises(ManifestError, match="duplicate task name 'a'"):
        engine.run("apply", [make_task("a"), make_task("a")], context="dev")


def test_targets_and_excludes(engine, processor) -> None:
    engine.run("create", chain() + [make_task("other")], context="dev", targets=["app"])
    assert processor.names("create") == ["db", "app"]


def test_processor_returning_garbage_fails_clearly(engine) -> None:
    class Weird(TaskProcessor):
        api_version = "weird/v1"

        def create(self, task, ctx):
            return 42

    engine.register_processor(Weird)
    result = engine.run("create", [make_task("w", api_version="weird/v1")], context="dev")
    assert "must return Result, dict, bool or None" in result.tasks["w"].error


def test_a_second_run_on_a_locked_context_is_refused() -> None:
    from opus import LockError, LockInfo

    state = MemoryStateBackend()
    state.try_lock(LockInfo("dev", "other-run", 1, "elsewhere", 0.0))
    engine = Engine(state=state, entry_points=False)
    engine.register_processor(RecordingProcessor)
    with pytest.raises(LockError, match="locked by run other-run"):
        engine.run("apply", [make_task("a")], context="dev")
    assert engine.run("apply", [make_task("a")], context="prod").ok


def test_run_history_is_recorded(engine) -> None:
    result = engine.run("apply", chain(), context="dev")
    run = engine.state.get_run(result.run_id)
    assert run.status == "ok" and run.summary == {"done": 3}
    assert [e.name for e in engine.state.run_entries(result.run_id)] == ["db", "app", "web"]


def test_seed_style_facade() -> None:
    tasks = Tasks()
    processor = RecordingProcessor()
    tasks.register_task_processor(processor)
    tasks.add_task({"apiVersion": "test/v1", "kind": "Thing", "spec": {"value": 1}})
    tasks.add_task(make_task("named", spec={"value": 2}))
    result = tasks.process_context("create", "test")
    assert result.ok and len(result.tasks) == 2
    assert processor.names("create")[1] == "named"


def test_unnamed_tasks_get_stable_names_across_runs(engine) -> None:
    manifest = {"apiVersion": "test/v1", "kind": "Thing", "spec": {"value": 1}}
    engine.run("apply", [manifest], context="dev")
    again = engine.run("apply", [dict(manifest)], context="dev")
    assert [t.status for t in again.tasks.values()] == ["unchanged"]


def test_redacted_spec_is_what_state_keeps(engine) -> None:
    class Secretive(TaskProcessor):
        api_version = "secret/v1"

        def create(self, task, ctx):
            return Result(outputs={"ok": True})

        def redact(self, spec):
            return {**spec, "password": "***"}

    engine.register_processor(Secretive)
    task = make_task("s", api_version="secret/v1", spec={"password": "hunter2", "user": "u"})
    engine.run("apply", [task], context="dev")
    record = engine.state.get("dev", "s")
    assert record.applied_spec == {"password": "***", "user": "u"}
    assert "hunter2" not in str(record.to_dict())
    # the checksum still covers the real value: changing the password is an update
    changed = make_task("s", api_version="secret/v1", spec={"password": "x", "user": "u"})
    assert engine.run("apply", [changed], context="dev").tasks["s"].action == "update"


def test_describe_and_delete_after_delete_say_there_is_nothing(engine) -> None:
    engine.run("apply", chain(), context="dev")
    engine.run("delete", chain(), context="dev")
    described = engine.run("describe", chain(), context="dev")
    assert described.ok
    assert described.tasks["web"].details == {"reason": "not in state: nothing to describe"}
    again = engine.run("delete", chain(), context="dev")
    # nothing is recorded any more: delete acts on what exists, never on the manifest alone
    assert again.ok
    assert {n: (t.status, t.action) for n, t in again.tasks.items()} == {
        "web": ("unchanged", None),
        "app": ("unchanged", None),
        "db": ("unchanged", None),
    }
    assert again.tasks["db"].details == {"reason": "not in state: nothing to delete"}


def test_delete_in_a_context_with_no_record_touches_nothing() -> None:
    """A task applied in dev and deleted in prod (where nothing is recorded): the manifest's
    spec alone must not reach the processor's delete -- it names dev's resource."""
    proc = RecordingProcessor()
    with Engine(state="memory://", plugins=Plugins(entry_points=False)) as engine:
        engine.register_processor(proc)
        task = make_task("t", spec={"value": 1})
        assert engine.run("apply", [task], context="dev").ok
        proc.calls.clear()
        result = engine.run("delete", [task], context="prod")
        assert result.ok and result.tasks["t"].status == "unchanged"
        assert proc.calls == []
        assert engine.state.get("dev", "t") is not None
