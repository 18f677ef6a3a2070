"""What a run does when a task fails: stop, let running tasks finish, roll back, skip."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from timeline_procs import TimelineProcessor, step

from opus import Engine, Plugins


@pytest.fixture
def proc() -> TimelineProcessor:
    return TimelineProcessor()


@pytest.fixture
def engine(proc: TimelineProcessor) -> Engine:
    engine = Engine(state="memory://", plugins=Plugins(entry_points=False), parallelism=2)
    engine.register_processor(proc)
    yield engine
    engine.close()


def failing_run_tasks() -> list[dict]:
    # "slow" and "bad" start together; "slow" finishes only after bad's rollback began,
    # so it is certainly running while the failure is handled.
    return [
        step("slow", wait_for="bad-rollback", value=1),
        step("bad", fail=["create"]),
        step("child", "bad"),
        step("grandchild", value="${VAR:child:value}"),
        *(step(f"later{i}") for i in range(4)),
    ]


def test_failure_stops_new_tasks_lets_running_finish_and_rolls_back(
    engine: Engine, proc: TimelineProcessor
) -> None:
    proc.event("bad-rollback")  # created here; set by the rollback below
    tasks = failing_run_tasks()
    original_rollback = proc.rollback

    def rollback(t, ctx):  # noqa: ANN001 - signal "slow" once the rollback runs
        proc.event("bad-rollback").set()
        return original_rollback(t, ctx)

    proc.rollback = rollback  # type: ignore[method-assign]
    result = engine.run("apply", tasks, context="dev")

    statuses = {n: o.status for n, o in result.tasks.items()}
    assert statuses == {
        "slow": "done",
        "bad": "rolled_back",
        "child": "skipped",
        "grandchild": "skipped",
        **{f"later{i}": "skipped" for i in range(4)},
    }
    assert not result.ok
    assert result.tasks["bad"].error == "RuntimeError: bad refused to create"
    assert "dependency 'bad' rolled back" in result.tasks["child"].error
    assert "stopped after task 'bad' failed" in result.tasks["later0"].error
    assert proc.started() == {"slow", "bad"}
    rollback_ctx = proc.contexts[("bad", "rollback")]
    assert rollback_ctx.failed_action == "create"
    assert rollback_ctx.error == "RuntimeError: bad refused to create"
    records = {r.name: r for r in engine.state.list_records("dev")}
    assert records["slow"].status == "done" and records["slow"].outputs["value"] == 1
    assert records["bad"].status == "failed" and "refused to create" in records["bad"].error
    assert set(records) == {"slow", "bad"}


def test_nothing_starts_while_the_failed_task_rolls_back(
    engine: Engine, proc: TimelineProcessor
) -> None:
    # "quick" finishes while "bad" is being rolled back: its free slot must stay unused.
    tasks = [
        step("bad", fail=["create"], rollback_sleep=0.2),
        step("quick", sleep=0.05),
        *(step(f"later{i}") for i in range(4)),
    ]
    result = engine.run("apply", tasks)
    rollback_began = proc.span("bad", "rollback").start
    late = [s.task for s in proc.spans if s.action == "create" and s.start > rollback_began]
    assert late == []
    assert result.tasks["bad"].status == "rolled_back"
    assert result.tasks["quick"].status == "done"


def test_keep_going_runs_independent_branches(engine: Engine, proc: TimelineProcessor) -> None:
    tasks = [
        step("bad", fail=["create"]),
        step("child", "bad"),
        step("grandchild", "child"),
        step("other"),
        step("other-child", "other"),
    ]
    result = engine.run("apply", tasks, keep_going=True)
    statuses = {n: o.status for n, o in result.tasks.items()}
    assert statuses == {
        "bad": "rolled_back",
        "child": "skipped",
        "grandchild": "skipped",
        "other": "done",
        "other-child": "done",
    }
    assert "dependency 'bad' rolled back" in result.tasks["grandchild"].error
    assert not result.ok


def test_rollback_that_fails_reports_both_errors(engine: Engine, proc: TimelineProcessor) -> None:
    result = engine.run("apply", [step("bad", fail=["create", "rollback"])], context="dev")
    outcome = result.tasks["bad"]
    assert outcome.status == "failed"
    assert outcome.error == (
        "RuntimeError: bad refused to create; rollback also failed: "
        "RuntimeError: bad refused to rollback"
    )
    record = engine.state.get("dev", "bad")
    assert record is not None and record.error == outcome.error


def test_no_rollback_when_disabled(engine: Engine, proc: TimelineProcessor) -> None:
    manifest = step("bad", fail=["create"])
    manifest["metadata"]["autoRollback"] = False
    result = engine.run("apply", [manifest])
    assert result.tasks["bad"].status == "failed"
    assert "rollback" not in {s.action for s in proc.spans}


def test_failed_update_keeps_previous_outputs_and_is_retried(
    engine: Engine, proc: TimelineProcessor
) -> None:
    assert engine.run("apply", [step("web", value=1)], context="dev").ok
    result = engine.run("apply", [step("web", value=2, fail=["update"])], context="dev")
    assert result.tasks["web"].status == "rolled_back"
    assert proc.contexts[("web", "rollback")].failed_action == "update"
    record = engine.state.get("dev", "web")
    assert record.status == "failed" and record.outputs == {"value": 1, "name": "web"}
    again = engine.run("apply", [step("web", value=2)], context="dev")
    assert again.tasks["web"].status == "done" and again.tasks["web"].action == "update"


def test_executor_refusing_a_task_fails_it_cleanly(engine: Engine, proc: TimelineProcessor) -> None:
    from opus.errors import ExecutorError

    submit = engine.executor.submit

    def picky(t, ctx):  # noqa: ANN001
        if t.name == "refused":
            raise ExecutorError(f"task {t.name!r}: cannot send it")
        return submit(t, ctx)

    engine.executor.submit = picky  # type: ignore[method-assign]
    result = engine.run(
        "apply", [step("refused"), step("after", "refused"), step("fine")], keep_going=True
    )
    assert result.tasks["refused"].status == "failed"
    assert result.tasks["refused"].error == "task 'refused': cannot send it"
    assert result.tasks["after"].status == "skipped"
    assert result.tasks["fine"].status == "done"


# -- through the CLI --------------------------------------------------------------------------
PLUGIN = textwrap.dedent("""
    import opus

    class Flaky(opus.TaskProcessor):
        api_version = "flaky/v1"

        def create(self, task, ctx):
            if ctx.spec.get("fail"):
                raise RuntimeError(f"{task.name} is broken")
            return {"ok": True}

        update = create

        def rollback(self, task, ctx):
            return None

    @opus.hookimpl
    def opus_register_processors():
        return [Flaky]
""")


def test_cli_exits_1_and_reports_json(tmp_path: Path) -> None:
    (tmp_path / "flaky_plugin.py").write_text(PLUGIN)
    manifests = tmp_path / "tasks.yaml"
    manifests.write_text(
        textwrap.dedent("""
        apiVersion: flaky/v1
        kind: Thing
        metadata: {name: broken}
        spec: {fail: true}
        ---
        apiVersion: flaky/v1
        kind: Thing
        metadata: {name: after, dependencies: [{tasks: [broken]}]}
        spec: {}
    """)
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "opus",
            "-p",
            "flaky_plugin",
            "apply",
            "-f",
            str(manifests),
            "--state",
            f"sqlite:///{tmp_path / 'state.db'}",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**__import__("os").environ, "PYTHONPATH": str(tmp_path)},
    )
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is False
    assert report["tasks"]["broken"]["status"] == "rolled_back"
    assert report["tasks"]["broken"]["error"] == "RuntimeError: broken is broken"
    assert report["tasks"]["after"]["status"] == "skipped"


def test_a_failure_is_reported_before_the_skips_it_causes() -> None:
    from support_processors import RecordingProcessor, make_task

    from opus import Engine, Hook, hookimpl

    class Order(Hook):
        def __init__(self) -> None:
            self.seen: list[tuple[str, str]] = []

        @hookimpl
        def opus_task_failed(self, task, ctx, outcome):
            self.seen.append((outcome.name, outcome.status))

    order = Order()
    engine = Engine(state="memory://", entry_points=False)
    engine.register_processor(RecordingProcessor)
    engine.register(order)
    tasks = [
        make_task("a", spec={"fail_on": ["create"]}),
        make_task("b", dependencies=[{"tasks": ["a"]}]),
        make_task("c", dependencies=[{"tasks": ["b"]}]),
    ]
    engine.run("create", tasks, context="dev")
    assert order.seen == [("a", "rolled_back"), ("b", "skipped"), ("c", "skipped")]
