"""How a run records what happened to each task: completions from the executor, success
(the task's record and history entry), failure and rollback, skips.

:class:`Completions` is the half of :class:`opus.run.Run` that writes state and reports
outcomes; the other half (:mod:`opus.run`) schedules, decides and submits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .actions import Action, Status, plain
from .errors import describe_error
from .model import HistoryEntry, Result, RunResult, Task, TaskOutcome, TaskState, checksum
from .planner import Decision, kind_changed, read_only_outcome, recorded_task
from .state.base import StateChange

if TYPE_CHECKING:
    from .cancellation import Cancellation
    from .executors.base import Executor
    from .graph import TaskGraph
    from .plugins import Plugins
    from .processor import TaskContext
    from .registry import ProcessorRegistry
    from .scheduler import Scheduler
    from .secret_refs import ReferencedSecrets, SpecSecrets
    from .state.base import StateBackend

logger = logging.getLogger("opus")

#: Phases of a task: the refresh before deciding, the action, the delete half of a
#: replacement, and the rollback of a failed action.
_REFRESH, _ACTION, _REPLACE, _ROLLBACK = "refresh", "action", "replace", "rollback"
#: Each action by its string (a lookup, where ``Action(...)`` is a call into enum).
_ACTIONS: dict[str, Action] = {a.value: a for a in Action}
#: Actions that write the task's record when they succeed.
_WRITES_STATE = frozenset({Action.CREATE, Action.UPDATE, Action.DELETE})
#: Actions whose success is a new record; actions that only read (the hot path names
#: these sets and members once: an enum member looked up on its class costs ~0.1 us).
_RECORDS = frozenset({Action.CREATE, Action.UPDATE})
_READS = frozenset({Action.DESCRIBE, Action.DETECT_DRIFT})
_DELETE, _REPLACE_ACTION, _DONE = Action.DELETE, Action.REPLACE, Status.DONE
_DONE_VALUE = Status.DONE.value
#: What a batch does once its state changes are committed (or, on a failed write, instead).
_Effect = Callable[[], None]
_OnError = Callable[[BaseException], None]


class Completions:
    """Completions, records and outcomes of a run (mixed into :class:`opus.run.Run`)."""

    # set by Run.__init__
    action: Action
    planning: bool
    context: str
    keep_going: bool
    tasks: dict[str, Task]
    prior: dict[str, TaskState]
    outputs: dict[str, Mapping[str, Any]]
    orphans: dict[str, TaskState]
    result: RunResult
    graph: TaskGraph
    registry: ProcessorRegistry
    plugins: Plugins
    state: StateBackend
    executor: Executor
    scheduler: Scheduler
    _in_flight: dict[str, tuple[TaskContext, float]]
    _desired: dict[str, TaskContext]
    _replacing: set[str]
    _decisions: dict[str, Decision]
    _pending_error: dict[str, str]
    _cancellations: dict[str, Cancellation]
    _batching: bool
    _pending: list[tuple[StateChange | None, _Effect, _OnError | None]]
    _secrets: ReferencedSecrets
    _secrets_of: dict[str, SpecSecrets | None]
    prefixes: frozenset[str]

    # provided by Run
    def _stop(self, reason: str) -> None:
        raise NotImplementedError

    def _act(self, name: str, decision: Decision, started: float) -> None:
        raise NotImplementedError

    def _decide(self, name: str, refreshed: Result | None) -> Decision:
        raise NotImplementedError

    def _send(self, task: Task, ctx: TaskContext, phase: str) -> None:
        raise NotImplementedError

    def _recorded_spec(self, record: TaskState, desired: Mapping[str, Any] | None) -> Any:
        raise NotImplementedError

    def _spec_secrets(self, task: Task) -> SpecSecrets | None:
        """What masks the sensitive outputs ``task``'s spec refers to, in what is shown of
        its specs and errors (``None``: none; see :mod:`opus.secret_refs`). Made once per
        task, when it starts: the tasks it refers to have all ended by then."""
        if not self._secrets:
            return None
        name = task.name
        if name in self._secrets_of:
            return self._secrets_of[name]
        orphan, prior = self.orphans.get(name), self.prior.get(name)
        if orphan is not None:
            found = self._secrets.for_record(orphan, self._made_by, self._outputs_of)
        elif prior is None:
            found = self._secrets.for_task(task, self.prefixes, self._made_by, self._outputs_of)
        else:
            found = self._secrets.for_task(
                task, self.prefixes, self._made_by, self._outputs_of,
                prior.applied_spec, prior.dependencies,
            )  # fmt: skip
        self._secrets_of[name] = found
        return found

    def _shown_error(self, task: Task, message: str) -> str:
        """An error ``message`` of ``task`` without the sensitive outputs it refers to."""
        secrets = self._spec_secrets(task)
        return message if secrets is None else secrets.text(message)

    def _made_by(self, name: str) -> str | None:
        task = self.tasks.get(name)
        if task is not None:
            return task.api_version
        record = self.prior.get(name)
        return record.api_version if record is not None else None

    def _outputs_of(self, name: str) -> Mapping[str, Any]:
        outputs = self.outputs.get(name)
        if outputs is None:
            record = self.prior.get(name)
            outputs = record.outputs if record is not None else {}
        return outputs

    # -- group commits ----------------------------------------------------------------------
    def _end_batch(self) -> None:
        self._batching = False
        self._commit()

    def _defer(self, change: StateChange | None, effect: _Effect, on_error: _OnError) -> None:
        """Write ``change`` then run ``effect`` (``on_error(exc)`` when the write fails) --
        at the end of the batch when one is being handled, else now."""
        self._pending.append((change, effect, on_error))
        if not self._batching:
            self._commit()

    def _commit(self) -> None:
        """Save the pending changes in one transaction, then run their effects in order.

        When the transaction fails, each change is tried alone so that one bad write
        fails only its own task.
        """
        pending, self._pending = self._pending, []
        changes = [change for change, _, _ in pending if change is not None]
        failed: dict[int, BaseException] = {}
        if changes:
            try:
                self.state.save_many(changes)
            except Exception:
                for index, (change, _, _) in enumerate(pending):
                    if change is not None:
                        try:
                            self.state.save_many([change])
                        except Exception as exc:
                            failed[index] = exc
        for index, (_, effect, on_error) in enumerate(pending):
            if index in failed and on_error is not None:
                on_error(failed[index])
            else:
                effect()

    # -- completions ------------------------------------------------------------------------
    def _complete(self, name: str, phase: str, value: Any, error: BaseException | None) -> None:
        task = self.tasks[name]
        ctx, started = self._in_flight[name]
        if phase == _ROLLBACK:
            original = self._pending_error.pop(name)
            if error is None:
                self._fail(name, ctx, original, started, rolled_back=True)
            else:
                both = f"{original}; rollback also failed: {describe_error(error)}"
                self._fail(name, ctx, both, started, rolled_back=False)
            return
        if error is not None:
            self._action_failed(task, ctx, describe_error(error), started, phase)
            return
        try:
            result = Result.coerce(value)
            if phase == _REFRESH:
                self._act(name, self._decide(name, result), started)
            elif phase == _REPLACE:  # the old resource is gone: create the new one
                create = self._desired[name].evolve(action=Action.CREATE)
                self._in_flight[name] = (create, started)
                self._send(task, create, _ACTION)
            else:
                self._succeed(task, ctx, result, started)
        except Exception as exc:  # a bad return value, a state write failure, a hook bug
            self._fail(name, ctx, describe_error(exc), started, rolled_back=False)

    def _action_failed(
        self, task: Task, ctx: TaskContext, message: str, started: float, phase: str
    ) -> None:
        name = task.name
        message = self._shown_error(task, message)  # logged below, reported, recorded
        if phase == _REFRESH:
            message = f"refresh (detect_drift) failed: {message}"
        elif name in self._replacing and ctx.action == Action.CREATE:
            message = (
                f"{message}; the replace had deleted the old resource, which a rollback does "
                "not bring back: the next apply creates the resource anew"
            )
        if not self.keep_going:  # stop starting tasks now, not after the rollback
            self._stop(f"not started: the run stopped after task {name!r} failed")
        prior = self.prior.get(name)
        if phase == _REPLACE and prior is not None and kind_changed(prior, task):
            task = recorded_task(prior)  # its delete went to the processor that made it
        if task.api_version not in self.registry:  # (a processor no longer installed)
            self._fail(name, ctx, message, started, rolled_back=False)
            return
        processor = self.registry.get(task.api_version)
        if (
            task.auto_rollback
            and phase != _REFRESH
            and ctx.action in _WRITES_STATE
            and processor.supports(Action.ROLLBACK)
        ):
            logger.warning("task %s failed (%s); rolling back", name, message)
            rollback_ctx = ctx.with_action(Action.ROLLBACK, failed_action=ctx.action, error=message)
            if ctx.action == Action.UPDATE and prior is not None:
                # undoing an update puts back what was applied
                rollback_ctx = rollback_ctx.evolve(spec=self._recorded_spec(prior, ctx.spec))
            self._pending_error[name] = message
            try:
                self._in_flight[name] = (ctx, started)
                self._send(task, rollback_ctx, _ROLLBACK)
            except Exception as exc:  # the executor refused the rollback
                self._pending_error.pop(name, None)
                both = f"{message}; rollback also failed: {describe_error(exc)}"
                self._fail(name, ctx, both, started, rolled_back=False)
            return
        self._fail(name, ctx, message, started, rolled_back=False)

    def _succeed(self, task: Task, ctx: TaskContext, result: Result, started: float) -> None:
        name, action = task.name, _ACTIONS[ctx.action]
        # the result's own dict (Result copies the processor's mapping when made)
        outputs = result.outputs if isinstance(result.outputs, dict) else dict(result.outputs)
        if action in _READS:
            outcome = self._read_only_outcome(task, ctx, result)
            self._finish(task, ctx, outcome, started)
            return
        now = time.time()
        shown = _REPLACE_ACTION if name in self._replacing else action
        change: StateChange | None = None
        record: TaskState | None = None
        if action in _RECORDS:
            prior = self.prior.get(name)
            record = TaskState(
                context=self.context,
                name=name,
                api_version=task.api_version,
                kind=task.kind,
                applied_spec=_own_dict(self.registry.get(task.api_version).redact(ctx.spec)),
                spec_checksum=checksum(ctx.spec),
                outputs=outputs,
                resource_checksum=result.resource_checksum,
                status=_DONE_VALUE,
                created_at=prior.created_at if prior and prior.created_at else now,
                updated_at=now,
                run_id=self.result.run_id,
                dependencies=tuple(sorted(self.graph.dependencies.get(name, ()))),
            )
            change = StateChange.save(
                record, self._entry(name, shown, _DONE, started, now, record.spec_checksum)
            )
        elif action == _DELETE:
            change = StateChange.remove(
                self.context, name, self._entry(name, action, _DONE, started, now)
            )
        outcome = TaskOutcome(name, _DONE, shown, outputs)
        if change is not None and change.entry is not None:
            outcome.duration_s = change.entry.duration_s  # one float for both
        decision = self._decisions.get(name)
        if name in self.orphans:
            outcome.details = {"reason": "no longer in manifests"}
        elif decision is not None and decision.notable:
            outcome.drifted = True if decision.drifted else None
            outcome.details = {"reason": decision.reason}

        def saved() -> None:
            if record is not None:
                self.prior[name] = record
            elif action == _DELETE:
                self.prior.pop(name, None)
            self.outputs[name] = outputs
            self._finish(task, ctx, outcome, started, now)  # the time its history entry has

        def not_saved(exc: BaseException) -> None:
            self._state_failed(exc)
            self._fail(name, ctx, describe_error(exc), started, rolled_back=False)

        self._defer(change, saved, not_saved)

    def _read_only_outcome(self, task: Task, ctx: TaskContext, result: Result) -> TaskOutcome:
        processor = self.registry.get(task.api_version)
        prior, redacted = self.prior.get(task.name), processor.redact(ctx.spec)
        secrets = self._spec_secrets(task)
        if secrets is not None:  # what describe and the drift diff show of either spec
            redacted = secrets.spec(redacted)
            if prior is not None:
                prior = replace(prior, applied_spec=secrets.spec(prior.applied_spec))
        return read_only_outcome(
            task.name,
            ctx.action,
            ctx.spec,
            prior,
            result,
            supported=processor.supports(Action.DETECT_DRIFT),
            redacted=redacted,
        )

    def _entry(
        self,
        name: str,
        action: str,
        status: str,
        started: float,
        now: float,
        spec_checksum: str | None = None,
        error: str | None = None,
    ) -> HistoryEntry:
        return HistoryEntry(
            run_id=self.result.run_id,
            context=self.context,
            name=name,
            action=plain(action),
            status=plain(status),
            at=now,
            duration_s=now - started,
            spec_checksum=spec_checksum,
            error=error,
        )

    def _finish(
        self,
        task: Task,
        ctx: TaskContext,
        outcome: TaskOutcome,
        started: float,
        finished: float | None = None,
    ) -> None:
        """Report ``outcome``; ``finished`` is when the task ended (default: now)."""
        if self._batching:  # reported in order with the batch, after its commit
            self._defer(
                None, lambda: self._finish(task, ctx, outcome, started, finished), lambda e: None
            )
            return
        if self._secrets and outcome.details:  # a processor's message, a plan's reason
            secrets = self._spec_secrets(task)
            if secrets is not None:
                outcome.details = secrets.data(outcome.details)
        outcome.started_at = started
        if finished is None or outcome.duration_s is None:
            outcome.finished_at = time.time() if finished is None else finished
            outcome.duration_s = outcome.finished_at - started
        else:  # set with its history entry
            outcome.finished_at = finished
        self._in_flight.pop(task.name, None)
        self._forget(task.name)
        self.result.tasks[task.name] = outcome
        self.scheduler.finish(task.name, succeeded=True)
        self.plugins.task_done(task, ctx, outcome)

    def _fail(
        self,
        name: str,
        ctx: TaskContext | None,
        message: str,
        started: float,
        *,
        rolled_back: bool,
        stop_run: bool = True,
    ) -> None:
        task = self.tasks[name]
        now = time.time()
        action = ctx.action if ctx else self.action
        status = Status.ROLLED_BACK if rolled_back else Status.FAILED
        message = self._shown_error(task, message)
        logger.info("task %s %s: %s", name, status.replace("_", " "), message)
        change: StateChange | None = None
        record: TaskState | None = None
        if action in _WRITES_STATE:
            prior = self.prior.get(name)
            record = replace(
                prior
                or TaskState(
                    context=self.context,
                    name=name,
                    api_version=task.api_version,
                    kind=task.kind,
                    created_at=now,
                ),
                status=Status.FAILED.value,
                error=message,
                updated_at=now,
                run_id=self.result.run_id,
            )
            shown = Action.REPLACE if name in self._replacing else action
            change = StateChange.save(
                record, self._entry(name, shown, status, started, now, error=message)
            )
        if name in self._replacing:
            action = Action.REPLACE

        def report(message: str) -> None:
            outcome = TaskOutcome(name, status, action, error=message)
            outcome.started_at, outcome.finished_at = started, now
            outcome.duration_s = now - started
            self._in_flight.pop(name, None)
            self._forget(name)
            self.result.tasks[name] = outcome
            blocked = self.scheduler.finish(name, succeeded=False)
            self.plugins.task_failed(task, ctx, outcome)  # the failure first, then its effects
            for dependent in blocked:
                self._skip(dependent, f"dependency {name!r} {status.replace('_', ' ')}")

        def saved() -> None:
            if record is not None:
                self.prior[name] = record
            report(message)

        def not_saved(exc: BaseException) -> None:  # state is gone: say so, still report
            self._state_failed(exc)
            report(f"{message}; saving state failed: {describe_error(exc)}")

        if stop_run and not self.keep_going:  # at once: no new task starts meanwhile
            self._stop(f"not started: the run stopped after task {name!r} failed")
        self._defer(change, saved, not_saved)

    def _forget(self, name: str) -> None:
        """Drop what only a running task needed (its context, decision, cancellation and
        references); a plan keeps the desired spec and the decision (saved plans)."""
        if not self.planning:
            self._desired.pop(name, None)
            self._decisions.pop(name, None)
        self._cancellations.pop(name, None)
        self.tasks[name]._forget_references()

    def _state_failed(self, exc: BaseException) -> None:
        """State cannot be written (disk full?): start nothing more, whatever keep_going
        says, since what runs now could not be recorded."""
        if self.result.state_error is None:
            self.result.state_error = f"saving state failed: {describe_error(exc)}"
            logger.error("%s; starting no more tasks", self.result.state_error)
        self._stop("not started: saving state failed")

    def _skip(self, name: str, reason: str) -> None:
        if name in self.result.tasks:
            return
        outcome = TaskOutcome(name, Status.SKIPPED, None, error=reason)
        self.result.tasks[name] = outcome
        self.plugins.task_failed(self.tasks[name], None, outcome)

    def _abandon(self, name: str) -> None:
        ctx, started = self._in_flight.get(name, (None, time.time()))
        self.scheduler.abandon(name)
        outcome = TaskOutcome(
            name,
            Status.FAILED,
            ctx.action if ctx else None,
            error="interrupted while running; its result is unknown",
        )
        outcome.started_at, outcome.finished_at = started, time.time()
        self.result.tasks[name] = outcome


def _own_dict(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A resolved spec to record: resolving made a fresh dict for this run, kept as it is."""
    return spec if type(spec) is dict else dict(spec)
