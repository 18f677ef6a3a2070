"""Every hook opus calls, in the order a run meets them.

Plugins implement these with ``@opus.hookimpl``; opus loads them from the ``opus``
entry-point group and from its own builtin plugins, in the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .model import Result, RunResult, Task, TaskOutcome
    from .processor import TaskContext, TaskProcessor
    from .state.base import StateBackend
    from .variables import Renderer

hookspec = pluggy.HookspecMarker("opus")
#: Marker for hook implementations; re-exported as ``opus.hookimpl``.
hookimpl = pluggy.HookimplMarker("opus")

# -- registration: called once when the plugin manager is set up -------------------------


@hookspec
def opus_register_processors() -> list[TaskProcessor | type[TaskProcessor]]:
    """Return the processors this plugin provides.

    Called once, after every plugin is loaded. Each item is a :class:`~opus.TaskProcessor`
    instance or class (classes are instantiated with no arguments). Two different classes
    claiming one ``api_version`` is an error naming both; the same class twice is harmless.
    """


@hookspec
def opus_command_map() -> Mapping[str, str]:
    """Return commands this plugin adds or remaps, as ``{command: action}``.

    Called once, after every plugin is loaded. Actions are ``create``, ``update``,
    ``delete``, ``describe``, ``detect_drift``, ``rollback``, ``apply`` and ``plan``.
    Plugins loaded later (external plugins load before builtins, so builtins are the
    defaults) override earlier ones for the same command.
    """


# -- state -------------------------------------------------------------------------------


@hookspec(firstresult=True)
def opus_state_backend(url: str) -> StateBackend | None:
    """Return a state backend for ``url`` if this plugin serves its scheme, else ``None``.

    Called when a run or a ``state`` command opens state. Stops at the first non-None
    result. ``url`` is the full state URL (``sqlite:///.opus/state.db``, ``memory://``...).
    """


@hookspec
def opus_state_schemes() -> list[str]:
    """Return the URL schemes this plugin's :func:`opus_state_backend` serves.

    Called by ``opus plugins`` to list state backends; it does not open anything.
    """


# -- per task ------------------------------------------------------------------------------


@hookspec(firstresult=True)
def opus_resolve_spec(
    task: Task,
    spec: Mapping[str, Any],
    variables: Mapping[str, Any],
    command: str,
    context: str,
    render: Renderer | None,
) -> dict[str, Any] | None:
    """Return ``spec`` with every reference resolved, or ``None`` to let the next plugin try.

    Called before each task is processed, with the raw ``spec`` and every variable visible
    to the task (user variables and outputs as ``task:KEY``). Stops at the first non-None
    result; the builtin resolver handles ``${VAR:...}`` and ``${ENV:...}`` and raises
    :class:`~opus.VariableError` for an unresolved reference.

    ``render(path, value) -> str | None`` comes from the task's processor
    (``TaskProcessor.render_reference``): a resolver must write each referenced value into
    its string as ``render`` returns it (``None``: as usual). It is how ``shell/v1`` quotes
    values for the shell, so a resolver that ignores it makes commands injectable.
    """


@hookspec(firstresult=True)
def opus_process_task(task: Task, ctx: TaskContext) -> Result | None:
    """Perform ``ctx.action`` on ``task`` and return its :class:`~opus.Result`.

    Called once per task action (and once more with ``ctx.action == "rollback"`` when a
    failed task is rolled back). Stops at the first non-None result; the builtin
    implementation dispatches to the processor registered for ``task.api_version``.
    Wrappers (``hookwrapper=True``/``wrapper=True``) may time, retry or audit the call.
    May run in a worker process with the distributed executor.
    """


# -- lifecycle notifications ----------------------------------------------------------------


@hookspec
def opus_run_start(run_id: str, command: str, action: str, context: str, tasks: list[Task]) -> None:
    """Called once when a run starts, after validation and locking, before any task runs.

    ``tasks`` are the tasks in scope, in processing order.
    """


@hookspec
def opus_task_start(task: Task, ctx: TaskContext) -> None:
    """Called in the driver just before a task's action is submitted for execution."""


@hookspec
def opus_task_done(task: Task, ctx: TaskContext, outcome: TaskOutcome) -> None:
    """Called in the driver after a task finished without error (``done``, ``unchanged``,
    ``planned``), after its state was saved."""


@hookspec
def opus_task_failed(task: Task, ctx: TaskContext | None, outcome: TaskOutcome) -> None:
    """Called in the driver after a task failed (after its rollback, if any) or was skipped.

    ``outcome.status`` is ``failed``, ``rolled_back`` or ``skipped``; ``outcome.error`` says why.
    ``ctx`` is ``None`` for a task that never started.
    """


@hookspec
def opus_run_finish(result: RunResult) -> None:
    """Called once when a run ends, after state is saved and before the lock is released."""
