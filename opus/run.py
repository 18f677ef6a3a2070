"""One run of one command in one context: the driver loop.

The driver (this thread) owns scheduling, variables and state; task actions run on the
executor. What to do to each task is decided by :mod:`opus.planner` (pure functions); the
driver only schedules, submits, records and reports. Every finished task is written to
state before its outcome is reported. Completions, records and outcomes are in
:mod:`opus.run_records`; refreshes started ahead of the loop in :mod:`opus.prefetch`.

Group commits: the driver takes every completion waiting in its queue and handles them as
one batch. What they change in state is written in ONE transaction
(:meth:`~opus.state.base.StateBackend.save_many`) at the end of the batch, and only then are
their outcomes reported and their dependents released. So a crash never loses a task that
was reported done, while a run pays one commit per batch instead of one per task.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any

from .actions import Action, Status
from .cancellation import Cancellation
from .commands import REVERSE_ACTIONS
from .diff import spec_diff
from .errors import CommandError, TaskTimeoutError, VariableError, describe_error
from .interrupts import deliver_interrupts
from .model import Result, RunResult, Task, TaskOutcome, TaskState, checksum
from .planner import (
    Decision,
    contains_unknown,
    decide,
    find_orphans,
    kind_changed,
    masked_paths,
    orphan_edges,
    prune_order,
    recorded_task,
    unmask,
)
from .prefetch import RefreshAhead
from .processor import ReadOnlyVariables, TaskContext
from .run_records import (
    _ACTION,
    _REFRESH,
    _REPLACE,
    _ROLLBACK,
    Completions,
    _Effect,
    _OnError,
)
from .scheduler import Scheduler
from .secret_refs import ReferencedSecrets, SpecSecrets
from .state.base import StateChange
from .variables import UNKNOWN

if TYPE_CHECKING:
    from .executors.base import Executor
    from .graph import TaskGraph
    from .plugins import Plugins
    from .saved_plan import PlannedTask
    from .state.base import StateBackend

logger = logging.getLogger("opus")

#: The ``phase`` of the completion-queue message that says "interrupted".
_INTERRUPT = "interrupt"
#: The phase of a completed batch of refreshes started ahead (see :mod:`opus.prefetch`).
_REFRESH_BATCH = "refresh-batch"

#: Seconds a cancelled (timed-out) action gets to stop before the run gives up on it.
CANCEL_GRACE = 5.0

#: Commands that decide per task from state (and refresh, and report orphans).
_CONVERGING = frozenset({Action.APPLY, Action.PLAN})


class Run(Completions):
    """Drives one run; build it and call :meth:`execute` once.

    ``manifest_names`` are every task of the manifests (before targets/excludes): records
    of other tasks are orphans. ``refresh`` asks processors about recorded resources before
    deciding; ``prune`` deletes orphans; ``destroy`` makes ``plan`` show what ``delete``
    would remove.
    """

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
        manifest_names: Collection[str] | None = None,
        refresh: bool = True,
        prune: bool = False,
        destroy: bool = False,
        saved: Mapping[str, PlannedTask] | None = None,
        task_timeout: float | None = None,
    ) -> None:
        self.command, self.action, self.context = command, Action(action), context
        #: plan: nothing is changed, changing tasks' outputs are unknown (asked per task)
        self.planning = self.action == Action.PLAN
        self.graph = graph
        self.user_variables = dict(variables)
        self._user_view = ReadOnlyVariables(self.user_variables)
        self.plugins = plugins
        self.registry = plugins.processors()
        self.prefixes = plugins.variable_prefixes()  # asked once, not per task
        self._resolve = plugins.spec_resolver(command, context)
        self.state = state
        self.executor = executor
        self.keep_going = keep_going
        self.saved = saved
        self.refresh = refresh and saved is None
        self.destroy = destroy and self.action == Action.PLAN
        self.result = RunResult(run_id=run_id, command=command, action=action, context=context)
        self.prior: dict[str, TaskState] = {s.name: s for s in state.list_records(context)}
        self.outputs: dict[str, Mapping[str, Any]] = {}
        self.planned_changes: set[str] = set()
        self.tasks: dict[str, Task] = graph.tasks  # copied below if orphans are added
        self._completions: queue.SimpleQueue[tuple[str, str, Any, Any]] = queue.SimpleQueue()
        #: While a batch is handled: its state changes and what to do once they are saved.
        self._batching = False
        self._pending: list[tuple[StateChange | None, _Effect, _OnError | None]] = []
        self._in_flight: dict[str, tuple[TaskContext, float]] = {}
        self._desired: dict[str, TaskContext] = {}  # apply/plan: the context to act with
        self._replacing: set[str] = set()
        self._decisions: dict[str, Decision] = {}
        #: the prior records the run started from (a plan's decisions were based on them)
        self.initial_prior: dict[str, TaskState] = dict(self.prior)
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

        converging = self.action in _CONVERGING and not self.destroy
        orphans: list[TaskState] = []
        if converging and manifest_names is not None:
            names = find_orphans(self.prior, manifest_names)
            self.result.orphans = names
            if prune:  # a saved plan prunes only the orphans it listed
                orphans = [
                    self.prior[n]
                    for n in names
                    if saved is None or (n in saved and saved[n].orphan)
                ]
        self.orphans = {o.name: o for o in orphans}
        if orphans:
            self.tasks = dict(graph.tasks)
        for record in orphans:
            self.tasks[record.name] = recorded_task(record)
        # (a task's spec may refer to one out of this run: recorded, with its apiVersion)
        made_by = {t.api_version for t in self.tasks.values()}
        made_by.update(r.api_version for r in self.prior.values())
        self._secrets = ReferencedSecrets(self.registry, made_by)
        self._secrets_of: dict[str, SpecSecrets | None] = {}

        reverse = self.action in REVERSE_ACTIONS or self.destroy
        edges: dict[str, set[str]] = graph.dependents if reverse else graph.dependencies
        order = list(reversed(graph.order)) if reverse else graph.order  # neither changed
        if orphans:
            edges = dict(edges)
            # Orphans go first (dependents before what they used), and manifest tasks wait
            # for them: a renamed task may take over what its old name held.
            prunable = [o for o in orphans if o.api_version in self.registry]
            edges.update(orphan_edges(prunable))
            for name in order:
                edges[name] = set(edges.get(name, ())) | {o.name for o in prunable}
            order = prune_order(orphans) + order

        # Limits depend only on a task's processor and group: kept per (apiVersion, group),
        # not per task (asked ~3 times a task).
        Limits = tuple[tuple[str, int], ...]
        known_limits: dict[tuple[str, str | None], Limits] = {}

        def kind_limits(api_version: str, group: str | None) -> Limits:
            kind = (api_version, group)
            limits = known_limits.get(kind)
            if limits is None:
                found = []
                if api_version in self.registry:
                    processor = self.registry.get(api_version)
                    if processor.max_concurrency:
                        found.append((f"processor:{api_version}", processor.max_concurrency))
                if group and group in group_limits:
                    found.append((f"group:{group}", group_limits[group]))
                limits = known_limits[kind] = tuple(found)
            return limits

        def limits_of(name: str) -> Limits:
            task = self.tasks[name]
            return kind_limits(task.api_version, task.concurrency_group if group_limits else None)

        # No limit anywhere (the usual run): the scheduler asks nothing per task.
        api_versions = {task.api_version for task in self.tasks.values()}
        limited = bool(group_limits) or any(kind_limits(api, None) for api in api_versions)
        self._limits_of: Callable[[str], Limits] | None = limits_of if limited else None
        self.scheduler = Scheduler(order, edges, parallelism, self._limits_of)
        self.parallelism = parallelism
        self.prefetch = RefreshAhead(self)
        self.order = order
        self._starters: dict[Action, Callable[[str], None]] = {
            Action.APPLY: self._start_converging,
            Action.PLAN: self._start_converging,
            Action.DELETE: self._start_delete,
            Action.DESCRIBE: self._start_read_only,
            Action.DETECT_DRIFT: self._start_read_only,
        }

    # -- the loop -----------------------------------------------------------------------------
    def execute(self) -> RunResult:
        """Run every task; returns when no task is running and none may start."""
        self.result.started_at = time.time()
        with deliver_interrupts(self._signal_interrupt):
            self.prefetch.start()
            while True:
                try:
                    if self._stop_reason is None:
                        self._start_ready()
                    if not self.scheduler.running:
                        break
                    batch = self._next_completions()
                except KeyboardInterrupt:  # not routed through a signal handler
                    if self._interrupt():
                        break
                    continue
                if self._handle(batch):
                    break
        if self._abandoned_work:  # threads still run actions given up on: do not wait
            self.executor.abandon()
            self.result.abandoned = True
        for name in self.scheduler.not_started():
            self._skip(name, self._stop_reason or "not started")
        self.result.finished_at = time.time()
        self._release()
        self.result.tasks = {n: self.result.tasks[n] for n in self.order if n in self.result.tasks}
        return self.result

    def _release(self) -> None:
        """Drop what only the loop needed (a record, outputs and a scheduler entry per task)
        before the engine writes the run's report. What a caller reads after the run stays:
        the result, the graph, the decisions, the desired specs (plan) and the records the
        run started from."""
        self.scheduler = Scheduler([], {}, self.parallelism)
        self.prior = {}
        self.outputs = {}
        self._secrets_of = {}
        self.prefetch = RefreshAhead(self)

    def _next_completions(self) -> list[tuple[str, str, Any, Any]]:
        """Wait for one completion, then take every other one already there (fewer
        wake-ups between the driver and the executor's threads)."""
        try:
            batch = [self._completions.get(timeout=self._next_wait())]
        except queue.Empty:  # a deadline passed
            self._check_deadlines()
            return []
        while True:
            try:
                batch.append(self._completions.get_nowait())
            except queue.Empty:
                return batch

    def _handle(self, batch: list[tuple[str, str, Any, Any]]) -> bool:
        """Handle completions in order, then commit their state changes in one transaction
        and report them; True when an interrupt ends the loop now."""
        self._batching = True
        try:
            for name, phase, value, error in batch:
                if phase == _INTERRUPT:
                    self._end_batch()  # what finished before the interrupt is recorded first
                    if self._interrupt():
                        return True
                    self._batching = True
                    continue
                if phase == _REFRESH_BATCH:
                    self._refreshed_batch(value, error)
                    continue
                if (name, phase) in self._stale:  # given up on after its timeout
                    self._stale.discard((name, phase))
                    continue
                value, error = self._timed_out(name, phase, value, error)
                self._complete(name, phase, value, error)
            self._check_deadlines()  # a busy queue never times out: look at the clock too
            return False
        finally:
            self._end_batch()

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
            self.prefetch.cancel("interrupted")  # refreshes started ahead stop as well
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
                if name in self.orphans:
                    self._start_orphan(name)
                else:
                    self._starters.get(self.action, self._start_direct)(name)
            except Exception as exc:  # resolving the spec failed, or a bug in a hook
                self._fail(name, None, describe_error(exc), time.time(), rolled_back=False)

    # -- starting a task ----------------------------------------------------------------------
    def _visible_variables(self, task: Task, refs: list[Any]) -> dict[str, Any]:
        """The variables a task sees: the run's own dict when that is all (no upstream
        outputs, nothing unknown), else a dict made for this task."""
        visible: dict[str, Any] | None = None
        upstream: Collection[str] = self.graph.dependencies[task.name]
        if refs:
            upstream = {r.task for r in refs if r.task} | set(upstream)
        for dep in upstream:
            outputs = self.outputs.get(dep)
            if outputs is None:
                record = self.prior.get(dep)
                outputs = record.outputs if record else {}
            if not outputs:
                continue
            if visible is None:
                visible = dict(self.user_variables)
            for key, value in outputs.items():
                visible[f"{dep}:{key}"] = value
        if self.planning:
            for ref in refs:
                if ref.task in self.planned_changes:
                    if visible is None:
                        visible = dict(self.user_variables)
                    visible[ref.variable] = UNKNOWN
        return self.user_variables if visible is None else visible

    def _context(
        self,
        name: str,
        *,
        missing_ok: bool = False,
        spec: Mapping[str, Any] | None = None,
        applied: Mapping[str, Any] | None = None,
    ) -> TaskContext | None:
        """The task's context with its resolved (desired) spec; ``None`` when a reference
        cannot be resolved and ``missing_ok``. A given ``spec`` (a saved plan's) is used as
        it is. With ``applied`` (what is recorded), the context of the task's refresh:
        ``detect_drift`` of ``applied``, the resolved spec as its ``desired_spec``."""
        task = self.tasks[name]
        # The graph already holds every referenced task as a dependency; only plan needs
        # the references themselves (to mark outputs of changing tasks unknown).
        refs = list(task.references(self.prefixes)) if self.planning else []
        visible = self._visible_variables(task, refs)
        if spec is None:
            try:
                spec = self._resolve(task, task.spec, visible)
            except VariableError:
                if missing_ok:
                    return None
                raise
        # the run's own variables are shared by every context that sees only them
        # (read-only views), not copied per task
        variables = self._user_view if visible is self.user_variables else visible
        if applied is not None:
            ctx = TaskContext.for_task(
                name, applied, self.command, self.context, Action.DETECT_DRIFT, self.result.run_id,
                self.prior.get(name), variables, desired_spec=spec,
            )  # fmt: skip
        else:
            ctx = TaskContext.for_task(
                name, spec, self.command, self.context, self.action, self.result.run_id,
                self.prior.get(name), variables,
            )  # fmt: skip
        if self._secrets:  # the processor is told what it holds of other tasks' secrets
            told = self._told_secrets(task)
            if told:
                ctx = ctx.evolve(secrets=told)
        return ctx

    def _told_secrets(self, task: Task) -> tuple[str, ...]:
        """``ctx.secrets`` of ``task``: other tasks' sensitive outputs its spec holds."""
        secrets = self._spec_secrets(task)
        return () if secrets is None else secrets.values

    def _recorded_spec(self, record: TaskState, desired: Mapping[str, Any] | None) -> Any:
        """What was applied, with masked secrets taken from the desired spec where it has them."""
        return unmask(dict(record.applied_spec or {}), desired if desired is not None else {})

    def _start_direct(self, name: str) -> None:
        """``create``, ``update``, ``rollback`` as commands: act with the manifest's spec."""
        ctx = self._context(name)
        assert ctx is not None
        self._submit(self.tasks[name], ctx, _ACTION)

    def _start_read_only(self, name: str) -> None:
        """``describe`` and ``detect_drift`` (``opus drift``): the manifest's spec, no writes."""
        task, prior = self.tasks[name], self.prior.get(name)
        ctx = self._context(name, missing_ok=prior is None)
        if ctx is None:
            # Never applied here, and the outputs it refers to are gone as well (say, after
            # a delete): drift reports it as drifted below; there is nothing to describe.
            ctx = self._bare_context(name)
            if self.action == Action.DESCRIBE:
                outcome = TaskOutcome(
                    name,
                    Status.DONE,
                    Action.DESCRIBE,
                    details={"reason": "not in state: nothing to describe"},
                )
                self._finish(task, ctx, outcome, time.time())
                return
        if self.action == Action.DETECT_DRIFT and prior is None:
            outcome = TaskOutcome(
                name,
                Status.DONE,
                Action.DETECT_DRIFT,
                drifted=True,
                spec_drift=True,
                details={"reason": "not in state: never applied in this context"},
            )
            self._finish(task, ctx, outcome, time.time())
            return
        if not self.registry.get(task.api_version).supports(self.action):
            self._finish(task, ctx, self._read_only_outcome(task, ctx, Result()), time.time())
            return
        self._submit(task, ctx, _ACTION)

    def _bare_context(self, name: str) -> TaskContext:
        task = self.tasks[name]
        return TaskContext(
            name, dict(task.spec), self.command, self.context, self.action,
            self.result.run_id, state=self.prior.get(name), secrets=self._told_secrets(task),
        )  # fmt: skip

    def _start_delete(self, name: str) -> None:
        """``delete``: acts on the recorded spec (what exists), not the manifest's."""
        task, prior = self.tasks[name], self.prior.get(name)
        if prior is None:  # never applied in this context (or removed): nothing of it to delete
            outcome = TaskOutcome(
                name, Status.UNCHANGED, None, details={"reason": "not in state: nothing to delete"}
            )
            self._finish(task, self._bare_context(name), outcome, time.time())
            return
        ctx = self._context(name, missing_ok=True)
        if ctx is None:  # recorded, but its references are gone: the record is enough
            ctx = self._bare_context(name).evolve(desired_spec=None)
        if prior.applied_spec is not None:
            ctx = ctx.evolve(spec=self._recorded_spec(prior, ctx.desired_spec))
        # the processor that made it deletes it, if the manifest names another one now
        self._submit(recorded_task(prior) if kind_changed(prior, task) else task, ctx, _ACTION)

    def _start_orphan(self, name: str) -> None:
        """Prune: delete a task no longer in the manifests, with its recorded spec."""
        task, record = self.tasks[name], self.orphans[name]
        if record.api_version not in self.registry:
            message = (
                f"task {name!r} is no longer in the manifests, but its processor is not "
                f"installed: no processor for apiVersion {record.api_version!r}"
            )
            # nothing was attempted: the other tasks go on, the run still fails
            self._fail(name, None, message, time.time(), rolled_back=False, stop_run=False)
            return
        ctx = TaskContext(
            task_name=name,
            spec=self._recorded_spec(record, None),
            command=self.command,
            context=self.context,
            action=Action.DELETE,
            run_id=self.result.run_id,
            state=record,
            desired_spec=None,
            secrets=self._told_secrets(task),
        )
        self._decisions[name] = Decision(Action.DELETE, "no longer in manifests")
        if self.action == Action.PLAN:
            outcome = TaskOutcome(
                name, Status.PLANNED, Action.DELETE, details={"reason": "no longer in manifests"}
            )
            self._finish(task, ctx, outcome, time.time())
            return
        self._submit(task, ctx, _ACTION)

    def _start_converging(self, name: str) -> None:
        """``apply`` and ``plan``: refresh what is recorded, then decide (planner), then act."""
        task, prior = self.tasks[name], self.prior.get(name)
        if self.destroy:
            self._plan_destroy(name)
            return
        if self.saved is not None:
            self._start_saved(name)
            return
        if self.prefetch.covers(name):
            self._start_prefetched(name)
            return
        ctx = self._context(name)
        assert ctx is not None
        self._desired[name] = ctx
        if prior is not None and kind_changed(prior, task):
            # another processor now: the recorded one deletes what it made, this one creates
            reason = f"apiVersion changed (was {prior.api_version})"
            self._act(name, Decision(Action.REPLACE, reason), time.time())
            return
        processor = self.registry.get(task.api_version)
        if (
            self.refresh
            and prior is not None
            and prior.spec_checksum is not None
            and processor.supports(Action.DETECT_DRIFT)
        ):
            refresh_ctx = ctx.evolve(
                action=Action.DETECT_DRIFT, spec=self._recorded_spec(prior, ctx.spec)
            )
            self._in_flight[name] = (refresh_ctx, time.time())
            self._send(task, refresh_ctx, _REFRESH)
            return
        self._act(name, self._decide(name, None), time.time())

    def _start_prefetched(self, name: str) -> None:
        """A task whose refresh was started ahead: decide now, or when its batch is in."""
        refresh_ctx, answer = self.prefetch.take(name)
        deps = self.graph.dependencies.get(name)
        if deps and any(self._outputs_changed(d) for d in deps):
            # an upstream task changed in this run: its new outputs are visible variables
            fresh = self._context(name, spec=refresh_ctx.desired_spec)
            assert fresh is not None
            self._desired[name] = fresh
        started = time.time()
        if answer is None:  # parked until its batch completes (_refreshed_batch)
            self._in_flight[name] = (refresh_ctx, started)
            return
        self._refresh_done(name, answer, refresh_ctx, started)

    def _outputs_changed(self, name: str) -> bool:
        """Whether task ``name``'s outputs in this run differ from its record at the start."""
        now = self.outputs.get(name)
        if now is None:
            return False
        before = self.initial_prior.get(name)
        return now != (before.outputs if before is not None else {})

    def _refreshed_batch(self, value: Any, error: BaseException | None) -> None:
        in_flight, done = self._in_flight, self.result.tasks
        ready = self.prefetch.batch_done(value, error)
        while True:
            for name, answer in ready:
                if name in in_flight and name not in done:
                    ctx, started = in_flight[name]
                    self._refresh_done(name, answer, ctx, started)
            ready = self.prefetch.refill()
            if not ready:
                return

    def _refresh_done(
        self, name: str, answer: tuple[Any, BaseException | None], ctx: TaskContext, started: float
    ) -> None:
        """Decide and act on the answer of a refresh started ahead (``ctx`` is its context)."""
        value, error = answer
        if error is not None:
            self._action_failed(self.tasks[name], ctx, describe_error(error), started, _REFRESH)
            return
        if name not in self._desired:  # the desired context: the refresh's, for this action
            self._desired[name] = ctx.evolve(action=self.action, spec=ctx.desired_spec)
        try:
            self._act(name, self._decide(name, Result.coerce(value)), started)
        except Exception as exc:  # a bad return value, a state write failure, a hook bug
            self._fail(name, ctx, describe_error(exc), started, rolled_back=False)

    def _start_saved(self, name: str) -> None:
        """``apply --plan``: the saved decision, with the saved spec where it was known."""
        assert self.saved is not None
        planned = self.saved.get(name)
        if planned is None:
            raise CommandError(f"task {name!r} is not in the saved plan")
        known = planned.spec is not None and not contains_unknown(planned.spec)
        ctx = self._context(name, spec=planned.spec if known else None)
        assert ctx is not None
        self._desired[name] = ctx
        self._act(name, planned.decision(), time.time())

    @property
    def decisions(self) -> Mapping[str, Decision]:
        """What was decided for each task of plan (orphans to prune included); apply keeps
        a decision only while its task runs."""
        return self._decisions

    def desired_spec(self, name: str) -> Mapping[str, Any] | None:
        """The resolved spec a task was decided with (``None`` for an orphan)."""
        ctx = self._desired.get(name)
        return None if ctx is None else ctx.spec

    def _decide(self, name: str, refreshed: Result | None) -> Decision:
        ctx = self._desired[name]
        processor = self.registry.get(self.tasks[name].api_version)
        return decide(
            ctx.spec,
            self.prior.get(name),
            refreshed,
            processor.replace_on,
            redacted=processor.redact(ctx.spec),
        )

    def _act(self, name: str, decision: Decision, started: float) -> None:
        """Carry out a decision: finish unchanged, report a plan, or submit the action."""
        task, ctx, prior = self.tasks[name], self._desired[name], self.prior.get(name)
        drifted = True if decision.drifted else None
        self._decisions[name] = decision
        if decision.action is None:
            outputs = dict(prior.outputs) if prior else {}
            self.outputs[name] = outputs
            self._finish(task, ctx, TaskOutcome(name, Status.UNCHANGED, None, outputs), started)
            return
        if self.planning:
            self.planned_changes.add(name)
            outcome = TaskOutcome(
                name,
                Status.PLANNED,
                decision.action,
                diff=self._diff(task, ctx.spec, prior),
                drifted=drifted,
                details={"reason": decision.reason} if decision.reason else None,
            )
            self._finish(task, ctx, outcome, started)
            return
        if decision.action == Action.REPLACE:
            assert prior is not None
            problems = self._new_spec_problems(task, ctx.spec)
            if problems:  # found before the old resource is deleted, not after
                message = f"not replaced: {problems}; the existing resource is left as it is"
                self._fail(name, ctx, message, started, rolled_back=False)
                return
            maker = recorded_task(prior) if kind_changed(prior, task) else task
            if maker.api_version not in self.registry:
                message = (
                    f"not replaced: it was made by apiVersion {maker.api_version!r}, whose "
                    f"processor is not installed to delete it (install it, or forget the "
                    f"record with `opus state rm {name}`)"
                )
                self._fail(name, ctx, message, started, rolled_back=False)
                return
            self._replacing.add(name)
            old = ctx.evolve(action=Action.DELETE, spec=self._recorded_spec(prior, ctx.spec))
            self._submit(maker, old, _REPLACE, started=started)
            return
        self._submit(task, ctx.evolve(action=decision.action), _ACTION, started=started)

    def _new_spec_problems(self, task: Task, spec: Mapping[str, Any]) -> str | None:
        """What is wrong with a resolved spec by its processor's ``spec_schema`` (``None``:
        nothing, or no schema): a reference may have resolved to a value the schema
        refuses, which the create after a replace's delete would find too late."""
        schema = getattr(self.registry.get(task.api_version), "spec_schema", None)
        if schema is None:
            return None
        from .specschema import spec_problems

        problems = spec_problems(schema, spec, task=task.name)
        return "; ".join(describe_error(problem) for problem in problems) or None

    def _plan_destroy(self, name: str) -> None:
        task = self.tasks[name]
        ctx = self._bare_context(name).evolve(action=Action.DELETE)
        if name in self.prior:
            outcome = TaskOutcome(name, Status.PLANNED, Action.DELETE)
        else:
            outcome = TaskOutcome(name, Status.UNCHANGED, None, details={"reason": "not in state"})
        self._finish(task, ctx, outcome, time.time())

    def _diff(self, task: Task, spec: Mapping[str, Any], prior: TaskState | None) -> dict[str, Any]:
        redacted = self.registry.get(task.api_version).redact(spec)
        applied = prior.applied_spec if prior else None
        secrets = self._spec_secrets(task)
        if secrets is not None:  # both sides: what was applied holds the secret as well
            redacted, applied = secrets.spec(redacted), secrets.spec(applied)
        diff = spec_diff(applied, redacted)
        if (
            prior is not None
            and prior.spec_checksum is not None
            and prior.spec_checksum != checksum(spec)
            and not any(diff.values())
            and not contains_unknown(spec)
        ):
            # the spec changed where only masked (secret) values differ
            diff["sensitive_changed"] = masked_paths(redacted)
        return diff

    def _submit(
        self, task: Task, ctx: TaskContext, phase: str, *, started: float | None = None
    ) -> None:
        """Announce the task (``task_start``) and send its action to the executor."""
        self.plugins.task_start(task, ctx)
        self._in_flight[task.name] = (ctx, time.time() if started is None else started)
        self._send(task, ctx, phase)

    def _send(self, task: Task, ctx: TaskContext, phase: str) -> None:
        name, put = task.name, self._completions.put

        def done(value: Any, error: BaseException | None) -> None:
            put((name, phase, value, error))

        self.executor.start_action(task, ctx, done)
        self._cancellations[name] = ctx.cancelled
        limit = task.timeout or self.task_timeout
        if limit:
            self._deadlines[name] = (phase, time.monotonic() + limit, limit)

    # -- timeouts ---------------------------------------------------------------------------
    def _next_wait(self) -> float | None:
        """Seconds until the next deadline (``None``: no deadline, wait for a message)."""
        ends = [end for _, end, _ in self._deadlines.values()]
        ends += [end for _, end, _ in self._cancelled.values()]
        if not ends:
            return None
        # a wait longer than the platform's longest (a timeout of days, or inf from the
        # library API) is waited in the longest steps there are, never an OverflowError
        return min(max(0.0, min(ends) - time.monotonic()), threading.TIMEOUT_MAX)

    def _what(self, name: str, phase: str) -> str:
        flight = self._in_flight.get(name)
        if phase == _ROLLBACK or flight is None:
            return str(phase)
        return str(flight[0].action)

    def _check_deadlines(self) -> None:
        """Cancel actions over their time; give up on those that ignore it after a grace."""
        now = time.monotonic()
        for name, (phase, end, limit) in list(self._deadlines.items()):
            if end > now:
                continue
            del self._deadlines[name]
            what = self._what(name, phase)
            logger.warning("task %s: %s timed out after %gs; cancelling it", name, what, limit)
            cancellation = self._cancellations.get(name)
            if cancellation is not None:
                cancellation.cancel(f"timed out after {limit:g}s")
            self._cancelled[name] = (phase, now + CANCEL_GRACE, limit)
        for name, (phase, end, limit) in list(self._cancelled.items()):
            if end > now:
                continue
            del self._cancelled[name]
            what = self._what(name, phase)
            logger.warning(
                "task %s: %s still running %gs after it was cancelled; giving up on it",
                name,
                what,
                CANCEL_GRACE,
            )
            self._stale.add((name, phase))
            self._abandoned_work = True
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
        detail = f" ({describe_error(error)})" if error is not None else ""
        what = self._what(name, phase)
        return None, TaskTimeoutError(f"{what} timed out after {cancelled[2]:g}s{detail}")
