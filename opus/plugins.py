"""Loading plugins (entry points, then builtins) and calling hooks through one typed facade."""

from __future__ import annotations

import functools
import importlib
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import importlib_metadata
import pluggy

from . import hookspecs
from .commands import check_action
from .errors import OpusError, PluginError, StateConfigError
from .hooks import Hook, TaskProcessingHook
from .registry import ProcessorRegistry

if TYPE_CHECKING:
    from .model import Result, RunResult, Task, TaskOutcome
    from .processor import TaskContext, TaskProcessor
    from .state.base import StateBackend
    from .variables import Renderer

logger = logging.getLogger(__name__)

#: The entry-point group plugin packages publish under.
ENTRY_POINT_GROUP = "opus"

#: Builtin plugins as ``(name, module)``; registered after entry-point plugins.
BUILTIN_PLUGINS: tuple[tuple[str, str], ...] = (
    ("builtin-commands", "opus.builtins.commands"),
    ("builtin-variables", "opus.builtins.variables"),
    ("builtin-state", "opus.builtins.state_backends"),
)

#: Builtins that cannot be disabled: without them nothing runs.
ESSENTIAL_PLUGINS = frozenset({"builtin-dispatch", "builtin-commands"})


@dataclass
class PluginInfo:
    """What ``opus plugins`` says about one loaded plugin."""

    name: str
    origin: str  # "builtin", "entry point", "registered"
    distribution: str | None = None
    version: str | None = None
    module: str | None = None
    hooks: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "origin": self.origin,
            "distribution": self.distribution,
            "version": self.version,
            "module": self.module,
            "hooks": self.hooks,
        }


def disabled_from_env() -> set[str]:
    """Plugin names listed (comma-separated) in ``OPUS_DISABLE_PLUGINS``."""
    raw = os.environ.get("OPUS_DISABLE_PLUGINS", "")
    return {name.strip() for name in raw.split(",") if name.strip()}


class Plugins:
    """opus' plugin manager: loads plugins and is the one place hooks are called from.

    External plugins (entry-point group ``opus``) load first, then the builtins, then
    ``check_pending()`` rejects hook implementations that match no hookspec. ``disabled``
    names (entry-point or distribution names) are blocked; essential builtins cannot be.
    """

    def __init__(
        self,
        *,
        entry_points: bool = True,
        disabled: Iterable[str] = (),
        plugins: Iterable[object] = (),
    ) -> None:
        self.pm = pluggy.PluginManager("opus")
        self.pm.add_hookspecs(hookspecs)
        if os.environ.get("OPUS_TRACE_PLUGINS") == "1":
            self.pm.trace.root.setwriter(lambda msg: logger.debug("pluggy: %s", msg.rstrip()))
            self.pm.enable_tracing()
        self.disabled = set(disabled) | disabled_from_env()
        essential = self.disabled & ESSENTIAL_PLUGINS
        if essential:
            raise PluginError(f"plugin(s) {', '.join(sorted(essential))} cannot be disabled")
        for name in self.disabled:
            self.pm.set_blocked(name)
        self.info: dict[str, PluginInfo] = {}
        self.registry = ProcessorRegistry()
        self._manual_processors: list[tuple[TaskProcessor | type[TaskProcessor], str]] = []
        self._commands: dict[str, str] | None = None
        self._command_owners: dict[str, str] = {}
        self._processors_loaded = False
        if entry_points:
            self._load_entry_points()
        for plugin in plugins:
            self.register(plugin)
        for name, module in BUILTIN_PLUGINS:
            if name not in self.disabled:
                self._register(
                    importlib.import_module(module),
                    name,
                    PluginInfo(name, "builtin", "opus", _version(), module),
                )
        self._register(
            TaskProcessingHook(self.registry),
            "builtin-dispatch",
            PluginInfo("builtin-dispatch", "builtin", "opus", _version(), "opus.hooks"),
        )
        self._check_pending()

    # -- loading ----------------------------------------------------------------------------
    def _load_entry_points(self) -> None:
        for ep in importlib_metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.name if ep.dist else None
            if ep.name in self.disabled or (dist and dist in self.disabled):
                logger.info("plugin %r (%s) is disabled", ep.name, dist)
                continue
            if self.pm.get_plugin(ep.name) is not None:
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin package: say which one
                raise PluginError(
                    f"cannot load plugin {ep.name!r} ({ep.value}) from distribution "
                    f"{dist!r}: {type(exc).__name__}: {exc}"
                ) from exc
            info = PluginInfo(
                ep.name,
                "entry point",
                dist,
                ep.dist.version if ep.dist else None,
                ep.value,
            )
            self._register(plugin, ep.name, info)

    def _register(self, plugin: object, name: str, info: PluginInfo) -> None:
        try:
            registered = self.pm.register(plugin, name=name)
        except ValueError as exc:
            raise PluginError(f"cannot register plugin {name!r}: {exc}") from None
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {name!r} is invalid: {exc}") from None
        if registered is None:  # blocked
            return
        info.hooks = sorted(caller.name for caller in (self.pm.get_hookcallers(plugin) or []))
        self.info[name] = info
        self._commands = None
        self._processors_loaded = False

    def register(self, plugin: object, name: str | None = None) -> str:
        """Register a plugin object (a module, a :class:`Hook` instance, ...) by hand.

        Registering the same object twice is harmless. Returns the plugin name.
        """
        if self.pm.is_registered(plugin):
            return self.pm.get_name(plugin) or ""
        if name is None:
            name = (
                plugin.plugin_name
                if isinstance(plugin, Hook)
                else getattr(plugin, "__name__", type(plugin).__name__)
            )
        if self.pm.get_plugin(name) is not None:
            name = f"{name}-{id(plugin):x}"
        module = getattr(plugin, "__module__", None) or getattr(plugin, "__name__", None)
        self._register(plugin, name, PluginInfo(name, "registered", module=module))
        self._check_pending()
        return name

    def _check_pending(self) -> None:
        """Reject hook implementations that match no hookspec (a typo in a hook name)."""
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {exc.plugin!r}: {exc}") from None

    def register_processor(
        self, processor: TaskProcessor | type[TaskProcessor], owner: str = "registered"
    ) -> None:
        """Register one processor by hand (as the seed ``register_task_processor`` did)."""
        self._manual_processors.append((processor, owner))
        if self._processors_loaded:
            self.registry.add(processor, owner)

    # -- registries --------------------------------------------------------------------------
    def _impls(self, hook: Any) -> list[Any]:
        """Hook implementations, builtins first, then the others in registration order."""
        impls = hook.get_hookimpls()
        return sorted(impls, key=lambda i: not i.plugin_name.startswith("builtin-"))

    def processors(self) -> ProcessorRegistry:
        """Every processor, collected from ``opus_register_processors`` on first use."""
        if not self._processors_loaded:
            self.registry.clear()
            for impl in self._impls(self.pm.hook.opus_register_processors):
                for processor in impl.function() or []:
                    self.registry.add(processor, impl.plugin_name)
            for processor, owner in self._manual_processors:
                self.registry.add(processor, owner)
            self._processors_loaded = True
        return self.registry

    def command_map(self) -> dict[str, str]:
        """``{command: action}`` merged from every plugin; plugins override builtins."""
        if self._commands is None:
            commands: dict[str, str] = {}
            owners: dict[str, str] = {}
            for impl in self._impls(self.pm.hook.opus_command_map):
                for command, action in dict(impl.function() or {}).items():
                    check_action(command, action, impl.plugin_name)
                    commands[command] = action
                    owners[command] = impl.plugin_name
            self._commands, self._command_owners = commands, owners
        return self._commands

    def command_owner(self, command: str) -> str:
        self.command_map()
        return self._command_owners[command]

    def state_schemes(self) -> dict[str, str]:
        """``{scheme: plugin name}`` for every state backend scheme."""
        out: dict[str, str] = {}
        for impl in self._impls(self.pm.hook.opus_state_schemes):
            for scheme in impl.function() or []:
                out.setdefault(scheme, impl.plugin_name)
        return out

    # -- hook calls --------------------------------------------------------------------------
    def state_backend(self, url: str) -> StateBackend:
        """Open the state backend for ``url``; an unknown scheme lists the known ones."""
        if "://" not in url:
            raise StateConfigError(
                f"invalid state URL {url!r}: expected SCHEME://... (e.g. sqlite:///.opus/state.db)"
            )
        backend: StateBackend | None = self.pm.hook.opus_state_backend(url=url)
        if backend is None:
            known = ", ".join(sorted(self.state_schemes())) or "none"
            raise StateConfigError(f"no state backend for {url!r} (known schemes: {known})")
        return backend

    def resolve_spec(
        self,
        task: Task,
        spec: Mapping[str, Any],
        variables: Mapping[str, Any],
        command: str,
        context: str,
    ) -> dict[str, Any]:
        """The spec with every reference resolved; the task's processor renders values into
        strings (``TaskProcessor.render_reference``)."""
        registry = self.processors()
        render: Renderer | None = None
        if task.api_version in registry:
            render = functools.partial(registry.get(task.api_version).render_reference, spec)
        resolved: dict[str, Any] | None = self.pm.hook.opus_resolve_spec(
            task=task,
            spec=spec,
            variables=variables,
            command=command,
            context=context,
            render=render,
        )
        if resolved is None:
            raise PluginError("no plugin resolved the task spec (is builtin-variables disabled?)")
        return resolved

    def process_task(self, task: Task, ctx: TaskContext) -> Result:
        """Run the action; outputs that are not JSON fail it (``OutputError``), so the
        driver rolls it back like any failed action."""
        from .model import Result
        from .outputs import check_outputs

        self.processors()
        result = Result.coerce(self.pm.hook.opus_process_task(task=task, ctx=ctx))
        check_outputs(task.name, ctx.action, result.outputs)
        return result

    def _notify(self, hook: str, **kwargs: Any) -> None:
        try:
            getattr(self.pm.hook, hook)(**kwargs)
        except OpusError:
            raise
        except Exception as exc:  # one line; the traceback only with -v
            logger.error(
                "a plugin's %s hook failed; the run goes on: %s: %s",
                hook,
                type(exc).__name__,
                exc,
                exc_info=logger.isEnabledFor(logging.INFO),
            )

    def run_start(
        self, run_id: str, command: str, action: str, context: str, tasks: list[Task]
    ) -> None:
        self._notify(
            "opus_run_start",
            run_id=run_id,
            command=command,
            action=action,
            context=context,
            tasks=tasks,
        )

    def task_start(self, task: Task, ctx: TaskContext) -> None:
        self._notify("opus_task_start", task=task, ctx=ctx)

    def task_done(self, task: Task, ctx: TaskContext, outcome: TaskOutcome) -> None:
        self._notify("opus_task_done", task=task, ctx=ctx, outcome=outcome)

    def task_failed(self, task: Task, ctx: TaskContext | None, outcome: TaskOutcome) -> None:
        self._notify("opus_task_failed", task=task, ctx=ctx, outcome=outcome)

    def run_finish(self, result: RunResult) -> None:
        self._notify("opus_run_finish", result=result)

    # -- introspection ---------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """Everything ``opus plugins`` shows, as plain data."""
        registry = self.processors()
        commands = self.command_map()
        return {
            "plugins": [info.to_dict() for info in self.info.values()],
            "processors": {
                api: {
                    "plugin": registry.owner(api),
                    "class": f"{type(p).__module__}.{type(p).__qualname__}",
                    "actions": list(p.supported_actions()),
                    "max_concurrency": p.max_concurrency,
                }
                for api, p in registry.items()
            },
            "commands": {
                cmd: {"action": action, "plugin": self._command_owners[cmd]}
                for cmd, action in sorted(commands.items())
            },
            "state_backends": self.state_schemes(),
            "disabled": sorted(self.disabled),
        }


def _version() -> str:
    from . import __version__

    return __version__
