"""Work a run must do once per task, not once per pass: finding a spec's references."""

from __future__ import annotations

from typing import Any

import pytest
from support_processors import RecordingProcessor

from opus import Engine, Task, VariableError
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

    def counting(spec: Any, root: str = "spec") -> Any:
        calls.append(spec)
        return real(spec, root)

    monkeypatch.setattr(variables_module, "find_references", counting)
    tasks = tree(15)
    with Engine(state="memory://", entry_points=False) as engine:
        engine.register_processor(RecordingProcessor)
        graph = engine.validate("apply", tasks)
        engine.validate("apply", tasks)  # the same Task objects: nothing parsed again
    assert len(calls) == 15
    assert set(graph.dependencies["t6"]) == {"t2"}
    assert tasks[6].references[0].task == "t2"


def test_a_malformed_reference_is_reported_each_time() -> None:
    task = Task("test/v1", "Thing", {"name": "bad"}, {"p": "${VAR::x}"})
    for _ in range(2):
        with pytest.raises(VariableError, match="malformed reference"):
            task.references  # noqa: B018
