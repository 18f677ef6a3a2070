"""Work a run must do once per task, not once per pass: finding a spec's references."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from support_processors import RecordingProcessor, make_task

from opus import Action, Engine, Hook, Task, VariableError, hookimpl
from opus import variables as variables_module


def tree(n: int) -> list[Task]:
    tasks = [Task("test/v1", "Thing", {"name": "t0"}, {})]
    for i in range(1, n):
        tasks.append(
            Task("test/v1", "Thing", {"name": f"t{i}"}, {"p": f"${{VAR:t{(i - 1) // 2}:name}}"})
        )
    return tasks


def test_references_are_found_once_per_task(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    real = variables_module.find_references

    def counting(spec: Any, root: str = "spec", prefixes: Any = None) -> Any:
        calls.append(spec)
        return real(spec, root, prefixes)

    monkeypatch.setattr(variables_module, "find_references", counting)
    tasks = tree(15)
    with Engine(state="memory://", entry_points=False) as engine:
        engine.register_processor(RecordingProcessor)
        graph = engine.validate("apply", tasks)
        engine.validate("apply", tasks)  # the same Task objects: nothing parsed again
    assert len(calls) == 15
    assert set(graph.dependencies["t6"]) == {"t2"}
    assert tasks[6].references()[0].task == "t2"


def test_a_malformed_reference_is_reported_each_time() -> None:
    task = Task("test/v1", "Thing", {"name": "bad"}, {"p": "${VAR::x}"})
    for _ in range(2):
        with pytest.raises(VariableError, match="malformed reference"):
            task.references()


def test_run_after_validate_does_not_validate_again(monkeypatch: pytest.MonkeyPatch) -> None:
    import opus.engine

    calls: list[str] = []
    real = opus.engine.validate

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append("validate")
        return real(*args, **kwargs)

    monkeypatch.setattr(opus.engine, "validate", counting)
    tasks = tree(7)
    with Engine(state="memory://", entry_points=False) as engine:
        engine.register_processor(RecordingProcessor)
        engine.validate("apply", tasks, "dev", {"x": 1}, keep=True)
        result = engine.run("apply", tasks, "dev", {"x": 1})  # what the CLI does
        assert result.ok and calls == ["validate"]
        engine.run("apply", tasks, "dev", {"x": 1})  # a second run validates again
        assert calls == ["validate", "validate"]
        engine.validate("apply", tasks, "dev", {"x": 1}, keep=True)
        engine.run("apply", tasks, "dev", {"x": 2})  # other variables: validated again
        assert calls == ["validate"] * 4
        engine.validate("apply", tasks, "dev", keep=True)
        engine.run("apply", list(tree(7)), "dev")  # other task objects: validated again
        assert calls == ["validate"] * 6
        engine.validate("apply", tasks, "dev")  # not kept: the run checks them itself
        engine.run("apply", tasks, "dev")
        assert calls == ["validate"] * 8


def test_a_task_edited_after_validate_is_checked_again_by_run() -> None:
    # validate() then an edit of a task's spec dict, then run(): the run must check what
    # it runs (it reused the earlier check, applied 'a', then failed 'b' at run time)
    from opus import OpusError

    class Typed(RecordingProcessor):
        spec_schema = {"type": "object", "properties": {"value": {"type": "integer"}}}

    tasks = [make_task("a", spec={"value": 1}), make_task("b", spec={"value": 2})]
    with Engine(state="memory://", entry_points=False) as engine:
        engine.register_processor(Typed)
        engine.validate("apply", tasks)
        tasks[1].spec["value"] = "two"
        with pytest.raises(OpusError, match="spec.value"):
            engine.run("apply", tasks)
        assert engine.state.list_records("default") == []


def test_hooks_nobody_implements_are_not_called() -> None:
    called: list[str] = []

    class Listener(Hook):
        @hookimpl
        def opus_task_done(self, task: Any, ctx: Any, outcome: Any) -> None:
            pass

    with Engine(state="memory://", entry_points=False) as engine:
        engine.register_processor(RecordingProcessor)
        engine.plugins.pm.add_hookcall_monitoring(
            lambda name, impls, kwargs: called.append(name), lambda *a: None
        )
        engine.run("apply", tree(3))
        assert "opus_task_start" not in called and "opus_task_done" not in called
        assert called.count("opus_process_task") == 3  # the builtin dispatch implements it
        engine.register(Listener())
        engine.run("apply", tree(3), context="other")
    assert called.count("opus_task_done") == 3 and "opus_task_start" not in called


def test_hooks_looked_up_once_per_run_still_go_through_pluggy_when_watched() -> None:
    # The resolver and the thread executor decide once per run whether to call the builtin
    # implementation directly: a watcher set before the run sees every per-task call.
    called: list[str] = []
    with Engine(state="memory://", entry_points=False) as engine:
        engine.register_processor(RecordingProcessor)
        engine.run("apply", tree(4))  # unwatched: the shortcuts are taken
        assert not called
        engine.plugins.pm.add_hookcall_monitoring(
            lambda name, impls, kwargs: called.append(name), lambda *a: None
        )
        result = engine.run("apply", tree(5), context="watched")
    assert result.ok
    assert called.count("opus_resolve_spec") == 5
    assert called.count("opus_process_task") == 5


def test_the_driver_s_context_shortcuts_make_what_the_constructor_makes() -> None:
    # TaskContext.for_task and evolve skip the dataclass __init__: they must not drift from it
    from dataclasses import fields

    from opus.processor import TaskContext

    made = TaskContext.for_task("t", {"a": 1}, "apply", "dev", Action.APPLY, "r1", None, {"x": 1})
    built = TaskContext(
        task_name="t", spec={"a": 1}, command="apply", context="dev", action="apply",
        run_id="r1", state=None, variables=made.variables, desired_spec={"a": 1},
    )  # fmt: skip
    assert made == built and set(vars(made)) == {f.name for f in fields(TaskContext)}
    assert type(made.action) is str and not made.cancelled.is_set()
    refresh = TaskContext.for_task(
        "t", {"a": 0}, "apply", "dev", Action.DETECT_DRIFT, "r1", None, made.variables,
        desired_spec={"a": 1},
    )  # fmt: skip
    assert refresh == replace(built, spec={"a": 0}, action="detect_drift")
    changed = made.evolve(action=Action.DELETE, spec={"b": 2})
    assert changed == replace(built, action="delete", spec={"b": 2})
    assert type(changed.action) is str and changed.cancelled is made.cancelled
