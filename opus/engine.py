"""The :class:`Engine`: validates tasks, locks the context and drives a run."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from .actions import Action
from .commands import action_for
from .errors import CommandError, ConfigError, describe_error
from .executors import Executor, make_executor
from .graph import TaskGraph
from .model import LockInfo, RunRecord, RunResult, Task, TaskOutcome, TaskState
from .names import check_context
from .plugins import Plugins
from .run import Run
from .state.base import DEFAULT_STATE_URL, StateBackend, pid_alive, this_host
from .validation import validate

if TYPE_CHECKING:
    from .saved_plan import Plan

logger = logging.getLogger("opus")


def new_run_id() -> str:
    """A sortable, unique run id: ``20261124T190102-3fa9c2``."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + os.urandom(3).hex()


def builtin_variables(context: str, variables: Mapping[str, Any] | None) -> dict[str, Any]:
    """User variables plus ``opus.context`` (the context name), which they may not override."""
    return {**(variables or {}), "opus.context": context}


def as_tasks(items: Iterable[Task | Mapping[str, Any]]) -> list[Task]:
    """Accept tasks or manifest mappings (unnamed ones get a stable id)."""
    return [
        item if isinstance(item, Task) else Task.from_manifest(item, require_name=False)
        for item in items
    ]


class _Validated(NamedTuple):
    """The last validation's arguments and result (see :meth:`Engine._validate`)."""

    key: tuple[Any, ...]
    api_versions: list[str]
    commands: dict[str, str]
    variables: dict[str, Any]
    tasks: list[Task]
    graph: TaskGraph
    names: Collection[str]


class Engine:
    """Runs commands over tasks with plugins, a state backend and an executor.

    ``state`` is a :class:`StateBackend` or a URL (default ``sqlite:///.opus/state.db``,
    opened on first use). ``parallelism`` bounds how many task actions run at once;
    ``group_limits`` bounds tasks sharing a ``metadata.concurrencyGroup``. ``task_timeout``
    (seconds) limits every action of a task without its own ``metadata.timeout``: a task over
    its time is cancelled (``ctx.cancelled``), fails with "timed out" and is rolled back.
    """

    def __init__(
        self,
        state: StateBackend | str | None = None,
        *,
        parallelism: int = 10,
        executor: Executor | str | None = None,
        plugins: Plugins | None = None,
        disable_plugins: Iterable[str] = (),
        entry_points: bool = True,
        lock_timeout: float = 0.0,
        keep_going: bool = False,
        group_limits: Mapping[str, int] | None = None,
        task_timeout: float | None = None,
    ) -> None:
        self.plugins = plugins or Plugins(entry_points=entry_points, disabled=disable_plugins)
        self._state_arg = state if state is not None else DEFAULT_STATE_URL
        self._state: StateBackend | None = state if isinstance(state, StateBackend) else None
        self.parallelism = parallelism
        self.executor = make_executor(executor, self.plugins)
        self.lock_timeout = lock_timeout
        self.keep_going = keep_going
        self.group_limits = dict(group_limits or {})
        self._validated: _Validated | None = None
        if task_timeout is not None and not task_timeout > 0:  # NaN is not > 0 either
            raise ConfigError(f"task_timeout must be a number of seconds > 0, not {task_timeout}")
        self.task_timeout = task_timeout

    # -- set-up ------------------------------------------------------------------------------
    @property
    def state(self) -> StateBackend:
        """The state backend, opened on first use."""
        if self._state is None:
            self._state = self.plugins.state_backend(str(self._state_arg))
        return self._state

    def register(self, plugin: object, name: str | None = None) -> str:
        """Register a plugin object or :class:`~opus.Hook` instance by hand."""
        return self.plugins.register(plugin, name)

    def register_processor(self, processor: Any) -> None:
        """Register a :class:`~opus.TaskProcessor` (instance or class) by hand."""
        self.plugins.register_processor(processor)

    def action_for(self, command: str) -> str:
        """The action ``command`` maps to (``CommandError`` listing commands if unknown)."""
        return action_for(command, self.plugins.command_map())

    # -- work --------------------------------------------------------------------------------
    def validate(
        self,
        command: str,
        tasks: Iterable[Task | Mapping[str, Any]],
        context: str = "default",
        variables: Mapping[str, Any] | None = None,
        *,
        targets: Sequence[str] = (),
        excludes: Sequence[str] = (),
        destroy: bool = False,
        keep: bool = False,
    ) -> TaskGraph:
        """Everything a run checks before it starts, without running or touching state.

        With ``destroy`` (a ``plan`` of what delete would remove) tasks are checked as for
        the ``delete`` action. With ``keep``, the next :meth:`run` of these same task
        objects with the same arguments reuses this validation instead of checking every
        task again (what the CLI does): only for tasks nobody changes in between, as a
        task's spec is a dict that could be edited after it was checked.
        """
        task_list = as_tasks(tasks)
        graph, _ = self._validate(
            command, task_list, context, variables, targets, excludes, destroy, keep=keep
        )
        return graph

    def _validate(
        self,
        command: str,
        task_list: list[Task],
        context: str,
        variables: Mapping[str, Any] | None,
        targets: Sequence[str],
        excludes: Sequence[str],
        destroy: bool,
        *,
        keep: bool = False,
    ) -> tuple[TaskGraph, Collection[str]]:
        """The selected graph, and the names of every manifest task (to find orphans).

        Validated once: :meth:`run` right after :meth:`validate` with ``keep`` of the same
        task objects with the same arguments (what the CLI does) reuses the graph instead
        of checking every task again.
        """
        action = self.action_for(command)
        check_context(context)
        if destroy:
            if action != Action.PLAN:
                raise CommandError(f"destroy is only for the plan action, not {action!r}")
            action = Action.DELETE
        registry = self.plugins.processors()
        variables = builtin_variables(context, variables)
        prefixes = self.plugins.variable_prefixes()
        commands = self.plugins.command_map()
        key = (command, context, tuple(targets), tuple(excludes), destroy, frozenset(prefixes))
        memo = self._validated
        if (
            memo is not None
            and memo.key == key
            and memo.api_versions == registry.api_versions()
            and memo.commands == commands
            and memo.variables == variables
            and len(memo.tasks) == len(task_list)
            and all(a is b for a, b in zip(memo.tasks, task_list, strict=True))
        ):
            return memo.graph, memo.names
        # plan --destroy previews `delete`: the graph as the delete command sees it (its
        # conditional dependencies and scopes), or the preview would not be what delete does
        seen_by = "delete" if destroy else command
        graph = validate(
            task_list, seen_by, action, context, registry, variables, prefixes, commands
        )
        selected = graph.select(targets, excludes, teardown=action == Action.DELETE)
        # every manifest task is in the graph unless a scope left some out: no set per task
        names: Collection[str] = (
            graph.tasks.keys() if not graph.out_of_scope else {t.name for t in task_list}
        )
        if keep:
            self._validated = _Validated(
                key, registry.api_versions(), dict(commands), dict(variables), task_list,
                selected, names,
            )  # fmt: skip
        return selected, names

    def run(
        self,
        command: str,
        tasks: Iterable[Task | Mapping[str, Any]],
        context: str = "default",
        variables: Mapping[str, Any] | None = None,
        *,
        targets: Sequence[str] = (),
        excludes: Sequence[str] = (),
        keep_going: bool | None = None,
        refresh: bool = True,
        prune: bool = False,
        destroy: bool = False,
    ) -> RunResult:
        """Run ``command`` over ``tasks`` in ``context``; nothing runs if validation fails.

        For ``apply`` and ``plan``: ``refresh`` asks each processor (``detect_drift``) about
        what is recorded before deciding; ``prune`` deletes (plan: shows) tasks recorded in
        the context but absent from ``tasks`` (orphans, always listed in
        ``RunResult.orphans``); it is ignored, with a warning, when ``targets`` or
        ``excludes`` are given. ``destroy`` makes ``plan`` show what delete would remove.

        ``targets`` keeps those tasks and what they depend on, ``excludes`` leaves out those
        tasks and what depends on them; for a delete both turn round (``targets``: those
        tasks and what depends on them; ``excludes``: those and what they depend on stay).
        """
        task_list = as_tasks(tasks)
        return self._execute(
            command, task_list, context, variables, targets, excludes, keep_going,
            refresh=refresh, prune=prune, destroy=destroy,
        )[0]  # fmt: skip

    def plan(
        self,
        tasks: Iterable[Task | Mapping[str, Any]],
        context: str = "default",
        variables: Mapping[str, Any] | None = None,
        *,
        command: str = "plan",
        targets: Sequence[str] = (),
        excludes: Sequence[str] = (),
        refresh: bool = True,
        prune: bool = False,
    ) -> Plan:
        """Plan as ``run("plan", ...)`` does and return a :class:`~opus.saved_plan.Plan`
        that can be saved (``to_json``/``save``) and applied later with :meth:`apply_plan`.

        ``Plan.result`` is the plan run's :class:`RunResult`.
        """
        if self.action_for(command) != Action.PLAN:
            raise CommandError(f"command {command!r} does not plan")
        task_list = as_tasks(tasks)
        if prune and (targets or excludes):
            prune = False  # _execute warns
        result, run = self._execute(
            command, task_list, context, variables, targets, excludes, None,
            refresh=refresh, prune=prune,
        )  # fmt: skip
        from .saved_plan import build_plan  # only plans need it: not every run's start-up

        return build_plan(
            context=context,
            command=command,
            manifests=task_list,
            variables=variables or {},
            targets=targets,
            excludes=excludes,
            refresh=refresh,
            prune=prune,
            decisions=run.decisions,
            specs={name: run.desired_spec(name) for name in run.decisions},
            prior=run.initial_prior,
            orphans=result.orphans,
            pruned=list(run.orphans),
            result=result,
        )

    def apply_plan(
        self, plan: Plan, *, command: str = "apply", keep_going: bool | None = None
    ) -> RunResult:
        """Execute a saved plan exactly: its manifests, variables and decisions, without
        refreshing or deciding again.

        Raises :class:`~opus.saved_plan.StalePlanError` (nothing runs) when the state of any
        task the plan covers changed since it was made.
        """
        if self.action_for(command) != Action.APPLY:
            raise CommandError(f"a saved plan is applied with an apply command, not {command!r}")
        return self._execute(
            command, plan.manifests, plan.context, plan.variables, plan.targets, plan.excludes,
            keep_going, refresh=False, prune=plan.prune, saved=plan,
        )[0]  # fmt: skip

    def import_task(
        self,
        name: str,
        tasks: Iterable[Task | Mapping[str, Any]],
        context: str = "default",
        variables: Mapping[str, Any] | None = None,
    ) -> TaskOutcome:
        """Adopt an existing resource: record task ``name`` as applied from what its
        processor's ``read`` action finds, without creating anything.

        Refused (an :class:`~opus.OpusError`, nothing recorded) when the task is already in
        state, its processor has no ``read``, nothing exists, or what exists differs from
        the spec.
        """
        from .importer import import_task

        return import_task(
            self, name, as_tasks(tasks), context, builtin_variables(context, variables),
            new_run_id(),
        )  # fmt: skip

    def _execute(
        self,
        command: str,
        task_list: list[Task],
        context: str,
        variables: Mapping[str, Any] | None,
        targets: Sequence[str],
        excludes: Sequence[str],
        keep_going: bool | None,
        *,
        refresh: bool,
        prune: bool,
        destroy: bool = False,
        saved: Plan | None = None,
    ) -> tuple[RunResult, Run]:
        variables = builtin_variables(context, variables)
        graph, manifest_names = self._validate(
            command, task_list, context, variables, targets, excludes, destroy
        )
        self._validated = None  # one run per validation: hold no tasks after this
        action = self.action_for(command)
        if prune and (targets or excludes):
            logger.warning("orphans are never pruned when targets or excludes are given")
            prune = False
        run_id = new_run_id()
        state = self.state
        lock = LockInfo(
            context=context, run_id=run_id, pid=os.getpid(), host=this_host(), since=time.time()
        )
        # The executor first: a cluster that cannot be reached fails the run before it
        # is recorded or locks anything.
        self.executor.start(self.plugins, self.parallelism)
        try:
            state.acquire_lock(lock, self.lock_timeout)
        except BaseException:
            self.executor.shutdown()
            raise
        try:
            if saved is not None:  # under the lock: nobody changes state in between
                try:
                    check_plan(saved, graph.tasks, state.list_records(context))
                except BaseException:
                    self.executor.shutdown()
                    raise
            close_dead_runs(state, context, lock)
            state.start_run(
                RunRecord(
                    run_id=run_id,
                    context=context,
                    command=command,
                    action=action,
                    started_at=lock.since,
                    pid=lock.pid,
                    host=lock.host,
                    user=_user(),
                )
            )
            run = Run(
                run_id=run_id,
                command=command,
                action=action,
                context=context,
                graph=graph,
                variables=variables,
                plugins=self.plugins,
                state=state,
                executor=self.executor,
                parallelism=self.parallelism,
                keep_going=self.keep_going if keep_going is None else keep_going,
                group_limits=self.group_limits,
                manifest_names=manifest_names,
                refresh=refresh,
                prune=prune,
                destroy=destroy,
                saved=None if saved is None else saved.tasks,
                task_timeout=self.task_timeout,
            )
            self.plugins.run_start(
                run_id, command, action, context, [run.tasks[n] for n in run.order]
            )
            try:
                result = run.execute()
            finally:
                self.executor.shutdown()
            status = "interrupted" if result.interrupted else ("ok" if result.ok else "failed")
            try:
                state.finish_run(run_id, status, result.finished_at, result.summary())
            except Exception as exc:  # disk full: the result is still reported
                problem = f"recording the end of run {run_id} failed: {describe_error(exc)}"
                logger.error("%s", problem)
                if result.state_error is None:
                    result.state_error = problem
            _save_report(state, result, run.graph)
            self.plugins.run_finish(result)
            return result, run
        finally:
            try:
                state.unlock(context, run_id)
            except Exception as exc:  # the next run takes a dead run's lock over
                logger.error("releasing the lock of context %s failed: %s", context, exc)

    def close(self) -> None:
        """Close the state backend and the executor."""
        self.executor.close()
        if self._state is not None:
            self._state.close()
            self._state = None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def close_dead_runs(state: StateBackend, context: str, lock: LockInfo) -> None:
    """Mark runs of ``context`` still 'running' whose process is gone from this host.

    A run killed with SIGKILL (or a crashed machine) never records its end. Called with the
    context lock held, so none of these can really be running: each is marked
    ``interrupted``, ending at its last recorded task, with the summary of its history.
    """
    for run in state.list_runs(context, limit=10):
        if (
            run.status != "running"
            or run.run_id == lock.run_id
            or run.host != lock.host
            or run.pid is None
            or pid_alive(run.pid)
        ):
            continue
        entries = state.run_entries(run.run_id)
        summary: dict[str, int] = {}
        for entry in entries:
            summary[entry.status] = summary.get(entry.status, 0) + 1
        ended = entries[-1].at if entries else run.started_at
        logger.info(
            "run %s (pid %d) ended without finishing: marked interrupted", run.run_id, run.pid
        )
        state.finish_run(run.run_id, "interrupted", ended, summary)


def check_plan(plan: Plan, selected: Mapping[str, Task], records: Iterable[TaskState]) -> None:
    """Refuse a saved plan that does not cover the same tasks or whose basis changed."""
    from .saved_plan import PlanFileError, StalePlanError

    missing = sorted(n for n in selected if n not in plan.tasks)
    if missing:
        raise PlanFileError(f"the saved plan has no decision for task(s): {', '.join(missing)}")
    reason = plan.stale({r.name: r for r in records})
    if reason is not None:
        raise StalePlanError(f"{reason}; make the plan again")


def _save_report(state: StateBackend, result: RunResult, graph: TaskGraph) -> None:
    """Keep what ``opus runs show --html`` draws; the run's outcome does not depend on it."""
    from .report.document import report_json

    try:
        state.save_run_report_text(result.run_id, report_json(result, graph))
    except Exception as exc:  # the run is recorded; only its report is lost
        logger.warning("run %s: could not keep its report: %s", result.run_id, exc)


def _user() -> str | None:
    """The user name ``getpass.getuser()`` gives, without importing it (it imports termios,
    for reading passwords)."""
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        if user := os.environ.get(name):
            return user
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except Exception:  # no user name in this environment (or no pwd: Windows)
        return None
