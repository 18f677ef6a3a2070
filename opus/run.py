"""One run of one command in one context: the driver loop.

The driver (this thread) owns scheduling, variables and state; task actions run on the
executor. Every finished task is written to state before the next completion is handled.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .cancellation import Cancellation
from .commands import REVERSE_ACTIONS
from .diff import spec_diff
from .errors import TaskTimeoutError, VariableError, describe_error
from .interrupts import deliver_interrupts
from .model import HistoryEntry, Result, RunResult, Task, TaskOutcome, TaskState, checksum
from .processor import ReadOnlyVariables, TaskContext
from .scheduler import Scheduler
from .variables import UNKNOWN, find_references

if TYPE_CHECKING:
    from .executors.base import Executor
    from .graph import TaskGraph
    from .plugins import Plugins
    from .state.base import StateBackend

logger = logging.getLogger("opus")

#: The ``phase`` of the completion-queue message that says "interrupted".
_INTERRUPT = "interrupt"

#: Seconds a cancelled (timed-out) action gets to stop before the run gives up on it.
CANCEL_GRACE = 5.0

#: Actions that write the task's record when they succeed.
_WRITES_STATE = frozenset({"create", "update", "delete"})


class Run:
    """Drives one run; build it and call :meth:`execute` once."""

    def __init__(
        self,
        *,
        run_id: str,
        command: str,
        action: str,
        context: str,
        graph: TaskGraph,
        variables: Mapping[str, Any],
        plugins: Plugins,
        state: StateBackend,
        executor: Executor,
        parallelism: int,
        keep_going: bool,
        group_limits: Mapping[str, int],
        task_timeout: float | None = None,
    ) -> None:
        self.command, self.action, self.context = command, action, context
        self.graph = graph
        self.user_variables = dict(variables)
        self.plugins = plugins
        self.registry = plugins.processors()
        self.state = state
        self.executor = executor
        self.keep_going = keep_going
        self.result = RunResult(run_id=run_id, command=command, action=action, context=context)
        self.prior: dict[str, TaskState] = {s.name: s for s in state.list_records(context)}
        self.outputs: dict[str, Mapping[str, Any]] = {}
        self.planned_changes: set[str] = set()
        self._completions: queue.SimpleQueue[tuple[str, str, Any, Any]] = queue.SimpleQueue()
        self._in_flight: dict[str, tuple[TaskContext, float]] = {}
        self._pending_error: dict[str, str] = {}  # task -> error, while rolling back
        self._stop_reason: str | None = None
        self._interrupts = 0
        self.task_timeout = task_timeout
        # timeouts: name -> (phase, monotonic deadline, seconds); cancelled ones -> grace end
        self._deadlines: dict[str, tuple[str, float, float]] = {}
        self._cancelled: dict[str, tuple[str, float, float]] = {}
        self._stale: set[tuple[str, str]] = set()  # (name, phase) completions to ignore
        self._abandoned_work = False
        self._cancellations: dict[str, Cancellation] = {}  # of each running action/rollback

        reverse = action in REVERSE_ACTIONS
        edges = graph.dependents if reverse else graph.dependencies
        order = list(reversed(graph.order)) if reverse else graph.order

        def limits_of(name: str) -> list[tuple[str, int]]:
            task = graph.tasks[name]
            limits = []
            processor = self.registry.get(task.api_version)
            if processor.max_concurrency:
                limits.append((f"processor:{task.api_version}", processor.max_concurrency))
            group = task.concurrency_group
            if group and group in group_limits:
                limits.append((f"group:{group}", group_limits[group]))
            return limits

        self.scheduler = Scheduler(order, edges, parallelism, limits_of)
        self.order = order

    # -- the loop -----------------------------------------------------------------------------
    def execute(self) -> RunResult:
        """Run every task; returns when no task is running and none may start."""
        self.result.started_at = time.time()
        with deliver_interrupts(self._signal_interrupt):
            while True:
                try:
                    if self._stop_reason is None:
                        self._start_ready()
                    if not self.scheduler.running:
                        break
                    try:
                        message = self._completions.get(timeout=self._next_wait())
                    except queue.Empty:
                        self._check_deadlines()
                        continue
                    name, phase, value, error = message
                except KeyboardInterrupt:  # not routed through a signal handler
                    if self._interrupt():
                        break
                    continue
                if phase == _INTERRUPT:
                    if self._interrupt():
                        break
                    continue
                if (name, phase) in self._stale:  # given up on after its timeout
                    self._stale.discard((name, phase))
                    continue
                value, error = self._timed_out(name, phase, value, error)
                self._complete(name, phase, value, error)
        if self._abandoned_work:  # threads still run actions given up on: do not wait
            self.executor.abandon()
            self.result.abandoned = True
        for name in self.scheduler.not_started():
            self._skip(name, self._stop_reason or "not started")
        self.result.finished_at = time.time()
        self.result.tasks = {n: self.result.tasks[n] for n in self.order if n in self.result.tasks}
        return self.result

    def _signal_interrupt(self) -> None:
        """Called from a signal handler: only a reentrant queue put is allowed here."""
        self._completions.put(("", _INTERRUPT, None, None))

    def _interrupt(self) -> bool:
        """Handle Ctrl-C / SIGTERM; returns True when the loop must end now."""
        self._interrupts += 1
        self.result.interrupted = True
        self._stop("interrupted")
        if self._interrupts > 1:
            logger.warning("second interrupt: not waiting for running tasks")
            for name in sorted(self.scheduler.running):
                cancellation = self._cancellations.get(name)
                if cancellation is not None:  # processors stop their work (shell: its group)
                    cancellation.cancel("interrupted", force=True)
                self._abandon(name)
            self.executor.abandon()
            self.result.abandoned = True
            return True
        if self.scheduler.running:
            logger.warning(
                "interrupted: waiting for %d running task(s)", len(self.scheduler.running)
            )
        return False

    def _stop(self, reason: str) -> None:
        if self._stop_reason is None:
            self._stop_reason = reason

    def _start_ready(self) -> None:
        while self._stop_reason is None:
            name = self.scheduler.next_task()
            if name is None:
                return
            try:
                self._start(name)
            except Exception as exc:  # resolving the spec failed, or a bug in a hook
                self._fail(name, None, describe_error(exc), time.time(), rolled_back=False)

    # -- starting a task ----------------------------------------------------------------------
    def _visible_variables(self, task: Task, refs: list[Any]) -> dict[str, Any]:
        visible = dict(self.user_variables)
        upstream = {r.task for r in refs if r.task} | self.graph.dependencies[task.name]
        for dep in upstream:
            outputs = self.outputs.get(dep)
            if outputs is None:
                record = self.prior.get(dep)
                outputs = record.outputs if record else {}
            for key, value in outputs.items():
                visible[f"{dep}:{key}"] = value
        if self.action == "plan":
            for ref in refs:
                if ref.task in self.planned_changes:
                    visible[ref.variable] = UNKNOWN
        return visible

    def _start(self, name: str) -> None:
        task = self.graph.tasks[name]
        # The graph already holds every referenced task as a dependency; only plan needs
        # the references themselves (to mark outputs of changing tasks unknown).
        refs = find_references(task.spec) if self.action == "plan" else []
        visible = self._visible_variables(task, refs)
        prior = self.prior.get(name)
        try:
            spec = self.plugins.resolve_spec(task, task.spec, visible, self.command, self.context)
        except VariableError:
            if self.action not in ("detect_drift", "delete", "describe") or prior is not None:
                raise
            # Never applied here, and the outputs it refers to are gone as well (say, after
            # a delete): drift reports it as drifted below; there is nothing to delete or
            # describe.
            spec = dict(task.spec)
            if self.action in ("delete", "describe"):
                reason = "not in state: nothing to " + self.action
                status, action = (
                    ("unchanged", None) if self.action == "delete" else ("done", "describe")
                )
                ctx = TaskContext(
                    name, spec, self.command, self.context, self.action, self.result.run_id
                )
                outcome = TaskOutcome(name, status, action, details={"reason": reason})
                self._finish(task, ctx, outcome, time.time())
                return
        ctx = TaskContext(
            task_name=name,
            spec=spec,
            command=self.command,
            context=self.context,
            action=self.action,
            run_id=self.result.run_id,
            state=prior,
            variables=ReadOnlyVariables(visible),
        )
        action = self.action
        if action in ("apply", "plan"):
            action = self._decide(spec, prior)
            if action == "unchanged":
                outputs = dict(prior.outputs) if prior else {}
                self.outputs[name] = outputs
                self._finish(task, ctx, TaskOutcome(name, "unchanged", None, outputs), time.time())
                return
            if self.action == "plan":
                self.planned_changes.add(name)
                outcome = TaskOutcome(name, "planned", action, diff=self._diff(task, spec, prior))
                self._finish(task, ctx, outcome, time.time())
                return
        elif action == "detect_drift" and prior is None:
            outcome = TaskOutcome(
                name,
                "done",
                "detect_drift",
                drifted=True,
                spec_drift=True,
                details={"reason": "not in state: never applied in this context"},
            )
            self._finish(task, ctx, outcome, time.time())
            return
        elif action in ("describe", "detect_drift"):
            processor = self.registry.get(task.api_version)
            if not processor.supports(action):
                self._finish(task, ctx, self._read_only_outcome(task, ctx, Result()), time.time())
                return
        ctx = replace(ctx, action=action)
        self._submit(task, ctx, "action")

    def _decide(self, spec: Mapping[str, Any], prior: TaskState | None) -> str:
        if prior is None or prior.spec_checksum is None:
            return "create"
        if prior.status != "done" or _contains_unknown(spec):
            return "update"
        return "unchanged" if prior.spec_checksum == checksum(spec) else "update"

    def _diff(self, task: Task, spec: Mapping[str, Any], prior: TaskState | None) -> dict[str, Any]:
        redacted = self.registry.get(task.api_version).redact(spec)
        return spec_diff(prior.applied_spec if prior else None, redacted)

    def _submit(self, task: Task, ctx: TaskContext, phase: str) -> None:
        if phase == "action":
            self.plugins.task_start(task, ctx)
            self._in_flight[task.name] = (ctx, time.time())
        future = self.executor.submit(task, ctx)
        name = task.name
        self._cancellations[name] = ctx.cancelled
        limit = task.timeout or self.task_timeout
        if limit:
            self._deadlines[name] = (phase, time.monotonic() + limit, limit)

        def done(fut: Any) -> None:
            try:
                value, error = fut.result(), None
            except BaseException as exc:  # noqa: BLE001 - reported as the task's error
                value, error = None, exc
            self._completions.put((name, phase, value, error))

        future.add_done_callback(done)

    # -- timeouts ---------------------------------------------------------------------------
    def _next_wait(self) -> float | None:
        """Seconds until the next deadline (``None``: no deadline, wait for a message)."""
        ends = [end for _, end, _ in self._deadlines.values()]
        ends += [end for _, end, _ in self._cancelled.values()]
        return max(0.0, min(ends) - time.monotonic()) if ends else None

    def _check_deadlines(self) -> None:
        """Cancel actions over their time; give up on those that ignore it after a grace."""
        now = time.monotonic()
        for name, (phase, end, limit) in list(self._deadlines.items()):
            if end > now:
                continue
            del self._deadlines[name]
            logger.warning("task %s: %s timed out after %gs; cancelling it", name, phase, limit)
            cancellation = self._cancellations.get(name)
            if cancellation is not None:
                cancellation.cancel(f"timed out after {limit:g}s")
            self._cancelled[name] = (phase, now + CANCEL_GRACE, limit)
        for name, (phase, end, limit) in list(self._cancelled.items()):
            if end > now:
                continue
            del self._cancelled[name]
            logger.warning(
                "task %s: %s still running %gs after it was cancelled; giving up on it",
                name,
                phase,
                CANCEL_GRACE,
            )
            self._stale.add((name, phase))
            self._abandoned_work = True
            flight = self._in_flight.get(name)
            what = "rollback" if phase == "rollback" or flight is None else flight[0].action
            error = TaskTimeoutError(
                f"{what} timed out after {limit:g}s and did not stop within "
                f"{CANCEL_GRACE:g}s of being cancelled"
            )
            self._complete(name, phase, None, error)

    def _timed_out(
        self, name: str, phase: str, value: Any, error: BaseException | None
    ) -> tuple[Any, BaseException | None]:
        """A completion of an action that was cancelled for its timeout is a timeout error,
        whatever it returned."""
        self._deadlines.pop(name, None)
        cancelled = self._cancelled.pop(name, None)
        if cancelled is None:
            return value, error
        limit = cancelled[2]
        flight = self._in_flight.get(name)
        what = "rollback" if phase == "rollback" or flight is None else flight[0].action
        detail = f" ({describe_error(error)})" if error is not None else ""
        return None, TaskTimeoutError(f"{what} timed out after {limit:g}s{detail}")

    # -- completions ------------------------------------------------------------------------
    def _complete(self, name: str, phase: str, value: Any, error: BaseException | None) -> None:
        task = self.graph.tasks[name]
        ctx, started = self._in_flight[name]
        if phase == "action":
            if error is None:
                try:
                    result = Result.coerce(value)
                    self._succeed(task, ctx, result, started)
                except Exception as exc:  # a bad return value or a state write failure
                    self._fail(name, ctx, describe_error(exc), started, rolled_back=False)
                return
            message = describe_error(error)
            if not self.keep_going:  # stop starting tasks now, not after the rollback
                self._stop(f"not started: the run stopped after task {name!r} failed")
            processor = self.registry.get(task.api_version)
            if (
                task.auto_rollback
                and ctx.action in _WRITES_STATE
                and processor.supports("rollback")
            ):
                logger.warning("task %s failed (%s); rolling back", name, message)
                rollback_ctx = ctx.with_action("rollback", failed_action=ctx.action, error=message)
                self._pending_error[name] = message
                try:
                    self._submit(task, rollback_ctx, "rollback")
                except Exception as exc:  # the executor refused the rollback
                    self._pending_error.pop(name, None)
                    both = f"{message}; rollback also failed: {describe_error(exc)}"
                    self._fail(name, ctx, both, started, rolled_back=False)
                return
            self._fail(name, ctx, message, started, rolled_back=False)
            return
        # phase == "rollback"
        original = self._pending_error.pop(name)
        if error is None:
            self._fail(name, ctx, original, started, rolled_back=True)
        else:
            both = f"{original}; rollback also failed: {describe_error(error)}"
            self._fail(name, ctx, both, started, rolled_back=False)

    def _succeed(self, task: Task, ctx: TaskContext, result: Result, started: float) -> None:
        name, action = task.name, ctx.action
        outputs = dict(result.outputs)
        if action in ("describe", "detect_drift"):
            outcome = self._read_only_outcome(task, ctx, result)
            self._finish(task, ctx, outcome, started)
            return
        now = time.time()
        if action in ("create", "update"):
            prior = self.prior.get(name)
            record = TaskState(
                context=self.context,
                name=name,
                api_version=task.api_version,
                kind=task.kind,
                applied_spec=dict(self.registry.get(task.api_version).redact(ctx.spec)),
                spec_checksum=checksum(ctx.spec),
                outputs=outputs,
                resource_checksum=result.resource_checksum,
                status="done",
                created_at=prior.created_at if prior and prior.created_at else now,
                updated_at=now,
                run_id=self.result.run_id,
            )
            try:
                self.state.save(
                    record, self._entry(name, action, "done", started, now, record.spec_checksum)
                )
            except Exception as exc:
                self._state_failed(exc)
                raise
            self.prior[name] = record
        elif action == "delete":
            try:
                self.state.remove(
                    self.context, name, self._entry(name, action, "done", started, now)
                )
            except Exception as exc:
                self._state_failed(exc)
                raise
            self.prior.pop(name, None)
        self.outputs[name] = outputs
        self._finish(task, ctx, TaskOutcome(name, "done", action, outputs), started)

    def _read_only_outcome(self, task: Task, ctx: TaskContext, result: Result) -> TaskOutcome:
        prior = self.prior.get(task.name)
        outputs = dict(result.outputs) or (dict(prior.outputs) if prior else {})
        details = dict(result.details)
        if ctx.action == "describe":
            if prior is not None:
                details.setdefault("state", prior.to_dict())
            return TaskOutcome(task.name, "done", "describe", outputs, details=details or None)
        spec_drift = prior is not None and prior.spec_checksum != checksum(ctx.spec)
        supported = self.registry.get(task.api_version).supports("detect_drift")
        resource_drift = result.drifted if supported else None
        if resource_drift is None and not spec_drift:
            drifted = None  # nobody can tell: reported as "unknown"
        else:
            drifted = bool(spec_drift or resource_drift)
        if spec_drift:
            details["spec_diff"] = spec_diff(
                prior.applied_spec if prior else None,
                self.registry.get(task.api_version).redact(ctx.spec),
            )
        if result.message:
            details["message"] = result.message
        return TaskOutcome(
            task.name,
            "done",
            "detect_drift",
            outputs,
            drifted=drifted,
            spec_drift=spec_drift,
            resource_drift=resource_drift,
            details=details or None,
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
            action=action,
            status=status,
            at=now,
            duration_s=now - started,
            spec_checksum=spec_checksum,
            error=error,
        )

    def _finish(self, task: Task, ctx: TaskContext, outcome: TaskOutcome, started: float) -> None:
        outcome.started_at, outcome.finished_at = started, time.time()
        outcome.duration_s = outcome.finished_at - started
        self._in_flight.pop(task.name, None)
        self.result.tasks[task.name] = outcome
        self.scheduler.finish(task.name, succeeded=True)
        self.plugins.task_done(task, ctx, outcome)

    def _fail(
        self, name: str, ctx: TaskContext | None, message: str, started: float, *, rolled_back: bool
    ) -> None:
        task = self.graph.tasks[name]
        now = time.time()
        action = ctx.action if ctx else self.action
        status = "rolled_back" if rolled_back else "failed"
        logger.info("task %s %s: %s", name, status.replace("_", " "), message)
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
                status="failed",
                error=message,
                updated_at=now,
                run_id=self.result.run_id,
            )
            try:
                self.state.save(
                    record, self._entry(name, action, status, started, now, error=message)
                )
                self.prior[name] = record
            except Exception as exc:  # state is gone: say so, keep going to report
                self._state_failed(exc)
                message += f"; saving state failed: {describe_error(exc)}"
        outcome = TaskOutcome(name, status, action, error=message)
        outcome.started_at, outcome.finished_at, outcome.duration_s = started, now, now - started
        self._in_flight.pop(name, None)
        self.result.tasks[name] = outcome
        blocked = self.scheduler.finish(name, succeeded=False)
        self.plugins.task_failed(task, ctx, outcome)  # the failure first, then its effects
        for dependent in blocked:
            self._skip(dependent, f"dependency {name!r} {status.replace('_', ' ')}")
        if not self.keep_going:
            self._stop(f"not started: the run stopped after task {name!r} failed")

    def _state_failed(self, exc: BaseException) -> None:
        """State cannot be written (disk full?): start nothing more, whatever --keep-going
        says, since what runs now could not be recorded."""
        if self.result.state_error is None:
            self.result.state_error = f"saving state failed: {describe_error(exc)}"
            logger.error("%s; starting no more tasks", self.result.state_error)
        self._stop("not started: saving state failed")

    def _skip(self, name: str, reason: str) -> None:
        if name in self.result.tasks:
            return
        outcome = TaskOutcome(name, "skipped", None, error=reason)
        self.result.tasks[name] = outcome
        self.plugins.task_failed(self.graph.tasks[name], None, outcome)

    def _abandon(self, name: str) -> None:
        ctx, started = self._in_flight.get(name, (None, time.time()))
        self.scheduler.running.discard(name)
        outcome = TaskOutcome(
            name,
            "failed",
            ctx.action if ctx else None,
            error="interrupted while running; its result is unknown",
        )
        outcome.started_at, outcome.finished_at = started, time.time()
        self.result.tasks[name] = outcome


def _contains_unknown(value: Any) -> bool:
    if value is UNKNOWN:
        return True
    if isinstance(value, str):
        return "(known after apply)" in value
    if isinstance(value, Mapping):
        return any(_contains_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_unknown(v) for v in value)
    return False
