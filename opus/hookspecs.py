"""Every hook opus calls, in the order a run meets them.

Plugins implement these with ``@opus.hookimpl``; opus loads them from the ``opus``
entry-point group and from its own builtin plugins, in the same way, and calls them
through pluggy, so ``tryfirst``/``trylast``, wrappers and tracing work as in pytest.

Ordering rule (pluggy's): ``tryfirst`` implementations run first, then the others with
the most recently registered first, then ``trylast`` ones. Entry-point plugins are
registered before the builtins, and every builtin implementation is ``trylast``, so a
third-party implementation always runs before a builtin one: for ``firstresult`` hooks
(a non-None result stops the call) a plugin's answer wins over the builtin's; for the
merging hooks (commands, variable sources) a plugin's entry overrides the builtin's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .executors.base import Executor
    from .model import Result, RunResult, Task, TaskOutcome
    from .processor import TaskContext, TaskProcessor
    from .registry import LazyProcessor
    from .state.base import StateBackend
    from .variables import Renderer

hookspec = pluggy.HookspecMarker("opus")
#: Marker for hook implementations; re-exported as ``opus.hookimpl``.
hookimpl = pluggy.HookimplMarker("opus")

# -- registration: called once when the plugin manager is set up -------------------------


@hookspec(historic=True)
def opus_configure(plugin_config: Mapping[str, Mapping[str, Any]]) -> None:
    """Receive the plugins' settings: the ``plugin_config`` section of ``opus.yaml``.

    Called once, when the plugin manager is set up (the CLI passes the config file's
    section; the Python API passes ``Plugins(plugin_config=...)``). It is a historic hook:
    a plugin registered later by hand is called with the same mapping on registration.
    ``plugin_config`` maps plugin names (entry-point names) to their settings; a plugin
    reads its own entry, e.g. ``plugin_config.get("vault", {})``. An empty mapping when
    there is no such section. Raise :class:`~opus.PluginError` for a bad setting.
    """


@hookspec
def opus_register_processors() -> list[TaskProcessor | type[TaskProcessor] | LazyProcessor]:
    """Return the processors this plugin provides.

    Called once, after every plugin is loaded. Each item is a :class:`~opus.TaskProcessor`
    instance or class (classes are instantiated with no arguments), or a
    :class:`~opus.LazyProcessor` naming one (imported when a task first uses its apiVersion).
    Two different classes claiming one ``api_version`` is an error naming both; the same
    class twice is harmless.
    """


@hookspec
def opus_command_map() -> Mapping[str, str]:
    """Return commands this plugin adds or remaps, as ``{command: action}``.

    Called once, on first use, for each plugin. Actions are ``create``, ``update``,
    ``delete``, ``describe``, ``detect_drift``, ``rollback``, ``apply`` and ``plan``.
    When two plugins map one command, the one pluggy calls first wins (see the module
    docstring), so every third-party plugin overrides the builtin map (``trylast``).
    """


@hookspec
def opus_variable_sources() -> Mapping[str, Callable[[str], Any]]:
    """Return ``${PREFIX:...}`` variable sources as ``{PREFIX: callable}``.

    Called once, on first use, for each plugin. ``PREFIX`` is upper case (``SECRET``,
    matching ``[A-Z][A-Z0-9_]*``); the callable gets the text after ``PREFIX:`` (stripped)
    and returns the value (any type: a string that is exactly one reference keeps it).
    It is called in the driver while a task's spec is resolved, from the run's threads.
    Raise :class:`~opus.VariableError` or ``KeyError`` for a missing value; opus adds the
    task name and spec path to every failure. Known prefixes are used for reference
    finding, dependency inference and validation too; ``VAR`` is reserved, and the builtin
    ``ENV`` source may be overridden. Two plugins claiming one prefix is an error.
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


# -- executors ------------------------------------------------------------------------------


@hookspec(firstresult=True)
def opus_executor(url: str) -> Executor | None:
    """Return an :class:`~opus.executors.Executor` for ``url``, or ``None`` if not yours.

    Called when an engine is made with ``executor="..."`` (the CLI's ``--executor``);
    ``url`` is that string (``local``, ``dask``, ``dask://host:8786``, ``myexec://...``).
    Stops at the first non-None result. The builtin (``trylast``) serves ``local``
    (threads, the default) and ``dask``/``dask://``/``tcp://``.
    """


# -- per task ------------------------------------------------------------------------------


@hookspec(firstresult=True)
def opus_resolve_spec(
    task: Task,
    spec: Mapping[str, Any],
    variables: Mapping[str, Any],
    command: str,
    context: str,
    sources: Mapping[str, Callable[[str], Any]],
    render: Renderer | None,
) -> dict[str, Any] | None:
    """Return ``spec`` with every reference resolved, or ``None`` to let the next plugin try.

    Called in the driver before each task is processed, with the raw ``spec``, every
    variable visible to the task (user variables and outputs as ``task:KEY``) and every
    variable source (``{PREFIX: callable}`` from :func:`opus_variable_sources`). Stops at
    the first non-None result; the builtin resolver (``trylast``) handles ``${VAR:...}``
    and every source and raises :class:`~opus.VariableError` for an unresolved reference.
    To add a ``${PREFIX:...}`` source, implement :func:`opus_variable_sources` instead.

    ``render(placement, value) -> str | None`` comes from the task's processor
    (``TaskProcessor.render_reference``): a resolver must write each referenced value into
    its string as ``render`` returns it (``None``: as usual). It is how ``shell/v1`` quotes
    values for the shell, so a resolver that ignores it makes commands injectable.
    """


@hookspec(firstresult=True)
def opus_process_task(task: Task, ctx: TaskContext) -> Result | None:
    """Perform ``ctx.action`` on ``task`` and return its :class:`~opus.Result`.

    Called once per task action (and once more with ``ctx.action == "rollback"`` when a
    failed task is rolled back), in an executor thread or a Dask worker process. Stops at
    the first non-None result; the builtin implementation (``trylast``) dispatches to the
    processor registered for ``task.api_version``. Wrappers (``wrapper=True``, or the older
    ``hookwrapper=True``) surround the whole call and may time or audit it: a
    ``wrapper=True`` generator gets the result from ``yield`` (or the exception raised
    there) and returns a result or raises. pluggy runs the inner call once per ``yield``;
    to retry, a wrapper calls the rest again with
    ``plugins.pm.subset_hook_caller("opus_process_task", remove_plugins=[self])``.
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


# -- command line ---------------------------------------------------------------------------


@hookspec
def opus_cli_commands(cli: Any) -> None:
    """Add subcommands to the ``opus`` command line.

    Called once per ``opus`` invocation, when the CLI looks up a subcommand it does not
    define itself (or lists them for ``--help``). ``cli`` is a :class:`click.Group`; add
    commands with ``cli.add_command(cmd)`` or the ``@cli.command()`` decorator. A command
    whose name opus already uses (``plugins``, ``state``, a mapped command...) is ignored
    with a warning. Command callbacks make their own :class:`~opus.Engine` if they need one.
    """
