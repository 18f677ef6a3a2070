"""``ProcessorContract``: the lifecycle every processor promises, checked with real runs.

Subclass it in a test module (the class name must start with ``Test``) and set:

- ``processor``: the processor class or instance under test;
- ``spec`` and ``changed_spec``: two valid specs of one resource (``changed_spec`` differs
  in something ``update`` changes); set them in an autouse fixture when they depend on
  other fixtures (a temporary path, a server URL);
- ``tamper(ctx)``: change the real resource behind opus' back (drift must see it);
- ``exists(ctx) -> bool``: whether the real resource is there.

``ctx`` is a :class:`~opus.TaskContext` for the task as it stands: ``ctx.spec`` the spec
that was applied, ``ctx.state`` the recorded state (outputs, resource checksum) or ``None``.
Optionally set ``failing_spec``, a spec whose ``create`` fails part-way, to check that its
rollback removes what was made. Each check runs the real :class:`~opus.Engine` on a SQLite
state of its own, from a temporary working directory.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

from ..engine import Engine
from ..hooks import Hook
from ..hookspecs import hookimpl
from ..model import Result, RunResult, Task, TaskOutcome
from ..plugins import Plugins
from ..processor import TaskContext, TaskProcessor
from .context import task_context

#: The context every contract run uses.
CONTEXT = "contract"


class InjectedFailure(RuntimeError):
    """Raised by the contract to make an action fail before the processor runs."""


class _FailBefore(Hook):
    """Fails one action before the processor is called (so its rollback runs)."""

    name = "opus-contract-fail-before"

    def __init__(self, action: str) -> None:
        self.action = action

    @hookimpl(tryfirst=True)
    def opus_process_task(self, task: Task, ctx: TaskContext) -> Result | None:
        if ctx.action == self.action:
            raise InjectedFailure(f"injected failure before {self.action} (contract test)")
        return None


class ProcessorContract:
    """Base class of a processor's lifecycle tests (see the module docstring)."""

    processor: ClassVar[TaskProcessor | type[TaskProcessor]]
    spec: Mapping[str, Any]
    changed_spec: Mapping[str, Any]
    #: A spec whose create fails part-way (optional).
    failing_spec: Mapping[str, Any] | None = None
    #: ``kind`` and ``metadata.name`` of the task the contract runs.
    kind: ClassVar[str] = "ContractResource"
    task_name: ClassVar[str] = "contract-task"

    # -- what the author provides -------------------------------------------------------------
    def tamper(self, ctx: TaskContext) -> None:
        """Change the real resource so that ``detect_drift`` must report drift."""
        raise NotImplementedError(f"{type(self).__name__} must implement tamper(ctx)")

    def exists(self, ctx: TaskContext) -> bool:
        """Whether the real resource described by ``ctx.spec`` is there."""
        raise NotImplementedError(f"{type(self).__name__} must implement exists(ctx)")

    # -- machinery ----------------------------------------------------------------------------
    @pytest.fixture
    def contract_engine(self, tmp_path: Path, opus_workdir: Path) -> Iterator[Engine]:
        """An engine with only this processor, on a SQLite state of the test's own."""
        plugins = Plugins(entry_points=False)
        plugins.register_processor(self.processor)
        engine = Engine(
            state=f"sqlite:///{tmp_path / 'contract-state' / 'state.db'}",
            plugins=plugins,
            parallelism=1,
        )
        try:
            yield engine
        finally:
            engine.close()

    def _processor(self, engine: Engine) -> TaskProcessor:
        return engine.plugins.processors().get(self._api_version())

    def _api_version(self) -> str:
        processor = self.processor
        return processor.api_version

    def task(self, spec: Mapping[str, Any]) -> Task:
        """The contract's task with ``spec``."""
        return Task.from_manifest(
            {
                "apiVersion": self._api_version(),
                "kind": self.kind,
                "metadata": {"name": self.task_name},
                "spec": dict(spec),
            }
        )

    def run(self, engine: Engine, command: str, spec: Mapping[str, Any]) -> TaskOutcome:
        """Run ``command`` on the contract's task and return its outcome."""
        result: RunResult = engine.run(command, [self.task(spec)], context=CONTEXT)
        return result.tasks[self.task_name]

    def context_for(
        self, engine: Engine, spec: Mapping[str, Any], action: str = "describe"
    ) -> TaskContext:
        """A context for the task as it stands: the recorded state, the applied spec."""
        state = engine.state.get(CONTEXT, self.task_name)
        applied = state.applied_spec if state is not None and state.applied_spec else spec
        return task_context(self.task(spec), action, state=state, spec=applied, context=CONTEXT)

    def created(self, engine: Engine) -> TaskOutcome:
        outcome = self.run(engine, "apply", self.spec)
        assert outcome.status == "done" and outcome.action == "create", (
            f"apply of a new task should create it: {outcome.status} {outcome.action} "
            f"{outcome.error or ''}"
        )
        return outcome

    def _supports(self, action: str) -> bool:
        processor = self.processor
        cls = processor if isinstance(processor, type) else type(processor)
        return cls.supports(action)

    def _needs(self, action: str) -> None:
        if not self._supports(action):
            pytest.skip(f"the processor does not implement {action}")

    # -- the contract -------------------------------------------------------------------------
    def test_create_makes_the_resource(self, contract_engine: Engine) -> None:
        self.created(contract_engine)
        ctx = self.context_for(contract_engine, self.spec)
        assert ctx.state is not None and ctx.state.status == "done", "create is recorded"
        assert self.exists(ctx), "after create, the resource must exist (exists(ctx) is False)"

    def test_describe_after_create(self, contract_engine: Engine) -> None:
        self._needs("describe")
        self.created(contract_engine)
        outcome = self.run(contract_engine, "describe", self.spec)
        assert outcome.status == "done", f"describe failed: {outcome.error}"
        assert self.exists(self.context_for(contract_engine, self.spec)), (
            "after create and describe, the resource must exist"
        )

    def test_no_drift_right_after_create(self, contract_engine: Engine) -> None:
        self._needs("detect_drift")
        self.created(contract_engine)
        outcome = self.run(contract_engine, "drift", self.spec)
        assert outcome.status == "done", f"drift failed: {outcome.error}"
        assert outcome.resource_drift is False, (
            "detect_drift reports drift right after create: "
            f"{(outcome.details or {}).get('reason', outcome.details)}"
        )

    def test_update_applies_the_changed_spec(self, contract_engine: Engine) -> None:
        self.created(contract_engine)
        outcome = self.run(contract_engine, "apply", self.changed_spec)
        assert outcome.status == "done" and outcome.action in ("update", "replace"), (
            f"apply of a changed spec should update: {outcome.status} {outcome.action} "
            f"{outcome.error or ''}"
        )
        ctx = self.context_for(contract_engine, self.changed_spec)
        assert ctx.state is not None and dict(ctx.state.applied_spec or {}) == dict(
            self.changed_spec
        )
        assert self.exists(ctx), "after update, the resource must exist"
        if self._supports("detect_drift"):
            drift = self.run(contract_engine, "drift", self.changed_spec)
            assert drift.resource_drift is False, "detect_drift reports drift right after update"
        again = self.run(contract_engine, "apply", self.changed_spec)
        assert again.status == "unchanged", f"a second apply should change nothing: {again}"

    def test_tampering_is_reported_as_drift(self, contract_engine: Engine) -> None:
        self._needs("detect_drift")
        self.created(contract_engine)
        self.tamper(self.context_for(contract_engine, self.spec))
        outcome = self.run(contract_engine, "drift", self.spec)
        assert outcome.status == "done", f"drift failed: {outcome.error}"
        assert outcome.resource_drift is True, (
            "the resource was changed behind opus' back (tamper) but detect_drift did not "
            "report drift"
        )

    def test_delete_removes_the_resource(self, contract_engine: Engine) -> None:
        self._needs("delete")
        self.created(contract_engine)
        ctx = self.context_for(contract_engine, self.spec)
        outcome = self.run(contract_engine, "delete", self.spec)
        assert outcome.status == "done", f"delete failed: {outcome.error}"
        assert contract_engine.state.get(CONTEXT, self.task_name) is None
        assert not self.exists(ctx), "after delete, the resource must be gone"

    def test_delete_again_is_harmless(self, contract_engine: Engine) -> None:
        self._needs("delete")
        self.created(contract_engine)
        ctx = self.context_for(contract_engine, self.spec, "delete")
        assert self.run(contract_engine, "delete", self.spec).status == "done"
        # as after a crash between the delete and the state write: the processor again
        processor = self._processor(contract_engine)
        try:
            processor.delete(self.task(self.spec), ctx)
        except Exception as exc:  # the contract's finding, reported as an assertion
            raise AssertionError(
                f"deleting a resource that is already gone must be harmless, but delete "
                f"raised {type(exc).__name__}: {exc}"
            ) from exc
        assert not self.exists(ctx), "a second delete must not bring the resource back"

    def test_rollback_of_a_failed_create_leaves_nothing(self, contract_engine: Engine) -> None:
        self._needs("rollback")
        contract_engine.register(_FailBefore("create"))
        outcome = self.run(contract_engine, "apply", self.spec)
        assert outcome.status == "rolled_back", (
            f"a failed create should be rolled back: {outcome.status} {outcome.error}"
        )
        assert "rollback also failed" not in (outcome.error or ""), outcome.error
        ctx = task_context(self.task(self.spec), "describe", context=CONTEXT)
        assert not self.exists(ctx), "after the rollback of a failed create, nothing is left"

    def test_rollback_of_a_create_failing_part_way(self, contract_engine: Engine) -> None:
        if self.failing_spec is None:
            pytest.skip("no failing_spec: set one whose create fails part-way to check this")
        self._needs("rollback")
        outcome = self.run(contract_engine, "apply", self.failing_spec)
        assert outcome.status == "rolled_back", f"create should fail: {outcome.status}"
        assert "rollback also failed" not in (outcome.error or ""), outcome.error
        ctx = task_context(self.task(self.failing_spec), "describe", context=CONTEXT)
        assert not self.exists(ctx), "after the rollback of a failed create, nothing is left"
