"""Loading plugins (entry points, then builtins) and calling hooks through one typed facade."""

from __future__ import annotations

import importlib
import logging
import os
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

import pluggy

from . import entrypoints, hookspecs
from .actions import PROCESSOR_ACTIONS
from .commands import check_action
from .errors import ExecutorConfigError, OpusError, PluginError, StateConfigError
from .hooks import Hook, TaskProcessingHook
from .output_check import check_outputs
from .registry import ProcessorRegistry
from .variables import PREFIX_PATTERN, VariableSource

if TYPE_CHECKING:
    from .executors.base import Executor
    from .model import Result, RunResult, Task, TaskOutcome
    from .processor import TaskContext, TaskProcessor
    from .state.base import StateBackend

logger = logging.getLogger(__name__)

#: ``resolve(task, spec, variables)``: a task's spec with its references resolved (see
#: :meth:`Plugins.spec_resolver`).
SpecResolver = Callable[["Task", Mapping[str, Any], Mapping[str, Any]], dict[str, Any]]

#: The entry-point group plugin packages publish under.
ENTRY_POINT_GROUP = "opus"

#: Builtin plugins as ``(name, module)``; registered after entry-point plugins.
BUILTIN_PLUGINS: tuple[tuple[str, str], ...] = (
    ("builtin-commands", "opus.builtins.commands"),
    ("builtin-variables", "opus.builtins.variables"),
    ("builtin-state", "opus.builtins.state_backends"),
    ("builtin-executors", "opus.builtins.executors"),
)

#: Builtins that cannot be disabled: without them nothing runs.
ESSENTIAL_PLUGINS = frozenset({"builtin-dispatch", "builtin-commands"})


class PluginInfo:
    """What ``opus plugins`` says about one loaded plugin.

    ``origin`` is "builtin", "entry point" or "registered". ``dist`` is an entry point's
    distribution: its name and version are read (parsing its metadata file) only when
    shown, not at every start.
    """

    __slots__ = ("name", "origin", "distribution", "version", "module", "hooks", "dist")

    def __init__(
        self,
        name: str,
        origin: str,
        distribution: str | None = None,
        version: str | None = None,
        module: str | None = None,
        hooks: list[str] | None = None,
        dist: Any = None,
    ) -> None:
        self.name, self.origin, self.module = name, origin, module
        self.distribution, self.version, self.dist = distribution, version, dist
        self.hooks: list[str] = [] if hooks is None else hooks

    def __repr__(self) -> str:
        return f"PluginInfo({self.name!r}, {self.origin!r}, module={self.module!r})"

    def to_dict(self) -> dict[str, Any]:
        dist = self.dist
        return {
            "name": self.name,
            "origin": self.origin,
            "distribution": self.distribution or (dist.name if dist is not None else None),
            "version": self.version or (dist.version if dist is not None else None),
            "module": self.module,
            "hooks": self.hooks,
        }


#: What pluggy can take a hook implementation from (a module's other values never are).
_HOOKABLE = (types.FunctionType, staticmethod, classmethod, types.MethodType)


class _PluginManager(pluggy.PluginManager):
    """pluggy's manager, quicker to look through module plugins: every start registers about
    ten modules, and pluggy inspects each of their names with ``inspect.getattr_static``
    (~2 ms). A module's value that is no function is skipped at once -- pluggy would find
    no hook implementation there either -- and every other name is left to pluggy."""

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        if type(plugin) is types.ModuleType:
            value = plugin.__dict__.get(name, _HOOKABLE)
            if value is not _HOOKABLE and not isinstance(value, _HOOKABLE):
                return None
        return super().parse_hookimpl_opts(plugin, name)


def disabled_from_env() -> set[str]:
    """Plugin names listed (comma-separated) in ``OPUS_DISABLE_PLUGINS``."""
    raw = os.environ.get("OPUS_DISABLE_PLUGINS", "")
    return {name.strip() for name in raw.split(",") if name.strip()}


class Plugins:
    """opus' plugin manager: loads plugins and is the one place hooks are called from.

    External plugins (entry-point group ``opus``) load first, then the builtins, then
    ``check_pending()`` rejects hook implementations that match no hookspec. ``disabled``
    names (entry-point or distribution names) are blocked; essential builtins cannot be.
    ``plugin_config`` (``{plugin name: settings}``, the ``plugin_config`` section of
    ``opus.yaml``) is handed to every plugin through ``opus_configure``. Every hook is
    called through pluggy; builtin implementations are ``trylast``.
    """

    def __init__(
        self,
        *,
        entry_points: bool = True,
        disabled: Iterable[str] = (),
        plugins: Iterable[object] = (),
        plugin_config: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.pm: pluggy.PluginManager = _PluginManager("opus")
        self.pm.add_hookspecs(hookspecs)
        #: pluggy's own call function, to see whether someone traces hook calls
        self._plain_hookexec = getattr(self.pm, "_inner_hookexec", None)
        self._tracing = os.environ.get("OPUS_TRACE_PLUGINS") == "1"
        if self._tracing:
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
        self._sources: dict[str, VariableSource] | None = None
        self._source_owners: dict[str, str] = {}
        self._processors_loaded = False
        #: The plugins' settings, as given to ``opus_configure``.
        self.plugin_config: dict[str, Mapping[str, Any]] = dict(plugin_config or {})
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
        self._configure()

    # -- loading ----------------------------------------------------------------------------
    def _load_entry_points(self) -> None:
        for ep in entrypoints.entry_points(ENTRY_POINT_GROUP):
            # A distribution's name means parsing its metadata: only when it matters.
            if ep.name in self.disabled or (self.disabled and _dist_name(ep) in self.disabled):
                logger.info("plugin %r (%s) is disabled", ep.name, _dist_name(ep))
                continue
            if self.pm.get_plugin(ep.name) is not None:
                continue
            builtin = dict(BUILTIN_PLUGINS).get(ep.name) or (
                "opus.hooks" if ep.name == "builtin-dispatch" else None
            )
            if builtin is not None:
                raise PluginError(
                    f"plugin {ep.name!r} ({ep.value}) from distribution {_dist_name(ep)!r} has "
                    f"the name of opus' builtin plugin {ep.name!r} ({builtin}): rename its "
                    "entry point"
                )
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin package: say which one
                raise PluginError(
                    f"cannot load plugin {ep.name!r} ({ep.value}) from distribution "
                    f"{_dist_name(ep)!r}: {type(exc).__name__}: {exc}"
                ) from exc
            info = PluginInfo(ep.name, "entry point", module=ep.value, dist=ep.dist)
            self._register(plugin, ep.name, info)

    def _register(self, plugin: object, name: str, info: PluginInfo) -> None:
        try:
            registered = self.pm.register(plugin, name=name)
        except ValueError:  # pluggy's message shows its whole registry: name the two
            taken = self.info.get(name)
            first = f"{taken.module} ({taken.origin})" if taken is not None else "another plugin"
            raise PluginError(
                f"cannot register plugin {name!r} ({info.module}, {info.origin}): the name is "
                f"taken by {first}"
            ) from None
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {name!r} is invalid: {exc}") from None
        if registered is None:  # blocked
            return
        info.hooks = sorted(caller.name for caller in (self.pm.get_hookcallers(plugin) or []))
        self.info[name] = info
        self._commands = None
        self._sources = None
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

    def _configure(self) -> None:
        """Hand ``plugin_config`` to every plugin (historic: later ones get it too)."""
        for name, section in self.plugin_config.items():
            if not isinstance(section, Mapping):
                raise PluginError(
                    f"plugin_config.{name}: expected a mapping of settings, "
                    f"got {type(section).__name__}"
                )
            if name not in self.info and name not in self.disabled:
                logger.warning("plugin_config.%s: no plugin named %r is loaded", name, name)
        try:
            self.pm.hook.opus_configure.call_historic(kwargs={"plugin_config": self.plugin_config})
        except OpusError:
            raise
        except Exception as exc:
            raise PluginError(
                f"a plugin's opus_configure failed: {type(exc).__name__}: {exc}"
            ) from exc

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

    def registered_plugins(self) -> list[object]:
        """Plugin objects registered by hand (:meth:`register`), in registration order."""
        return [
            plugin
            for name, info in self.info.items()
            if info.origin == "registered" and (plugin := self.pm.get_plugin(name)) is not None
        ]

    def registered_processors(self) -> list[TaskProcessor | type[TaskProcessor]]:
        """Processors registered by hand (:meth:`register_processor`), in order."""
        return [processor for processor, _owner in self._manual_processors]

    # -- registries --------------------------------------------------------------------------
    def _each(self, hook_name: str, **kwargs: Any) -> Iterator[tuple[str, Any]]:
        """``(plugin name, result)`` of a merging hook, in pluggy's call order.

        Each plugin is called through its own ``pm.subset_hook_caller`` (as pytest calls
        conftest hooks), so a result can be credited to the plugin that gave it.
        """
        caller = getattr(self.pm.hook, hook_name)
        names = list(dict.fromkeys(i.plugin_name for i in reversed(caller.get_hookimpls())))
        objects = {name: self.pm.get_plugin(name) for name in names}
        for name in names:
            others = [plugin for other, plugin in objects.items() if other != name]
            for result in self.pm.subset_hook_caller(hook_name, remove_plugins=others)(**kwargs):
                yield name, result

    def processors(self) -> ProcessorRegistry:
        """Every processor, collected from ``opus_register_processors`` on first use.

        Two classes claiming one apiVersion are recorded in ``registry.conflicts``; using
        that apiVersion fails, naming both.
        """
        if not self._processors_loaded:
            self.registry.clear()
            for name, processors in self._each("opus_register_processors"):
                if isinstance(processors, (str, bytes, Mapping)) or not isinstance(
                    processors, (Iterable, type(None))
                ):
                    raise PluginError(
                        f"plugin {name!r}: opus_register_processors returned "
                        f"{type(processors).__name__}, not a list of processors"
                    )
                for processor in processors or []:
                    self._add_processor(processor, name)
            for processor, owner in self._manual_processors:
                self._add_processor(processor, owner)
            self._processors_loaded = True
        return self.registry

    def _add_processor(self, processor: TaskProcessor | type[TaskProcessor], owner: str) -> None:
        """Add one processor; a class that cannot be built (its ``__init__`` raises) fails
        only the tasks of its apiVersion, as a conflicting apiVersion does."""
        try:
            self.registry.add(processor, owner)
        except OpusError:
            raise
        except Exception as exc:
            cls = processor if isinstance(processor, type) else type(processor)
            message = (
                f"plugin {owner!r}: cannot build processor {cls.__module__}.{cls.__qualname__}: "
                f"{type(exc).__name__}: {exc}"
            )
            api_version = getattr(cls, "api_version", None)
            if not isinstance(api_version, str) or not api_version:
                raise PluginError(message) from exc
            logger.debug("%s", message)
            if api_version not in self.registry:  # listed (unbuilt), never used:
                self.registry.add(object.__new__(cls), owner)
            # get() raises the message for its apiVersion's tasks
            self.registry.conflicts.setdefault(api_version, message)

    def command_map(self) -> dict[str, str]:
        """``{command: action}`` merged from every plugin; the first one called wins, so
        third-party plugins override the builtin (``trylast``) map."""
        if self._commands is None:
            commands: dict[str, str] = {}
            owners: dict[str, str] = {}
            for name, mapping in self._each("opus_command_map"):
                for command, action in _mapping(name, "opus_command_map", mapping).items():
                    check_action(command, action, name)
                    if command not in commands:
                        commands[command] = action
                        owners[command] = name
            self._commands, self._command_owners = commands, owners
        return self._commands

    def command_owner(self, command: str) -> str:
        self.command_map()
        return self._command_owners[command]

    def state_schemes(self) -> dict[str, str]:
        """``{scheme: plugin name}`` for every state backend scheme."""
        out: dict[str, str] = {}
        for name, schemes in self._each("opus_state_schemes"):
            for scheme in schemes or []:
                out.setdefault(scheme, name)
        return out

    def variable_sources(self) -> dict[str, VariableSource]:
        """``{PREFIX: source}`` from ``opus_variable_sources``, collected on first use.

        A plugin may override a builtin source (``ENV``); ``VAR`` is reserved; two
        plugins claiming one prefix is a :class:`PluginError` naming both.
        """
        if self._sources is None:
            sources: dict[str, VariableSource] = {}
            owners: dict[str, str] = {}
            for name, provided in self._each("opus_variable_sources"):
                for prefix, source in _mapping(name, "opus_variable_sources", provided).items():
                    where = f"plugin {name!r}: variable source {prefix!r}"
                    if not isinstance(prefix, str) or not PREFIX_PATTERN.fullmatch(prefix):
                        raise PluginError(f"{where}: a prefix is upper case, like SECRET")
                    if prefix == "VAR":
                        raise PluginError(f"{where}: VAR is reserved for opus' own variables")
                    if not callable(source):
                        raise PluginError(f"{where}: {source!r} is not callable")
                    if prefix in owners:
                        if self.info[name].origin == "builtin":
                            continue  # a plugin overrides a builtin source
                        raise PluginError(
                            f"variable source {prefix!r} is claimed by two plugins: "
                            f"{owners[prefix]!r} and {name!r}"
                        )
                    sources[prefix], owners[prefix] = source, name
            self._sources, self._source_owners = sources, owners
        return self._sources

    def variable_prefixes(self) -> frozenset[str]:
        """Every known ``${PREFIX:...}``: ``VAR`` and the variable sources' prefixes."""
        return frozenset(self.variable_sources()) | {"VAR"}

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
        from .state.base import StateBackend

        self._check_type("opus_state_backend", backend, StateBackend, url=url)
        return backend

    def executor(self, url: str) -> Executor:
        """The executor for ``url`` (``local``, ``dask``, ``dask://host:port``, ...)."""
        executor: Executor | None = self.pm.hook.opus_executor(url=url)
        if executor is None:
            raise ExecutorConfigError(
                f"unknown executor {url!r} (use local, dask or dask://HOST:PORT, or install "
                "a plugin that provides it)"
            )
        from .executors.base import Executor

        self._check_type("opus_executor", executor, Executor, url=url)
        return executor

    def _check_type(self, hook: str, result: object, expected: type, **kwargs: Any) -> None:
        """Raise a :class:`PluginError` naming the plugin when the ``firstresult`` hook
        ``hook`` returned something that is not an ``expected``."""
        if isinstance(result, expected):
            return
        owner = "?"
        for impl in reversed(getattr(self.pm.hook, hook).get_hookimpls()):
            if impl.hookwrapper or impl.wrapper:
                continue
            if impl.function(*[kwargs[name] for name in impl.argnames]) is not None:
                owner = impl.plugin_name
                break
        raise PluginError(
            f"plugin {owner!r}: {hook} returned {type(result).__name__} {result!r:.80}, "
            f"not a {expected.__name__}"
        )

    def add_cli_commands(self, cli: Any) -> None:
        """Let plugins add subcommands to ``cli`` (a click group) via ``opus_cli_commands``."""
        try:
            self.pm.hook.opus_cli_commands(cli=cli)
        except OpusError:
            raise
        except Exception as exc:  # a broken plugin: one clear line, not a traceback
            raise PluginError(
                f"a plugin's opus_cli_commands failed: {type(exc).__name__}: {exc}"
            ) from exc

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
        return self.spec_resolver(command, context)(task, spec, variables)

    def spec_resolver(self, command: str, context: str) -> SpecResolver:
        """:meth:`resolve_spec` for the tasks of one run of ``command`` in ``context``: the
        variable sources, the hook's implementations and whether each apiVersion's
        processor renders are looked up once, not per task. When the builtin resolver is
        the only one and no one watches hook calls, it is called without the hook."""
        registry = self.processors()
        sources = self.variable_sources()
        renderers: dict[str, TaskProcessor | None] = {}

        def renderer(api_version: str) -> TaskProcessor | None:
            if api_version not in registry:
                return None
            processor = registry.get(api_version)
            # the default renders nothing: no call per reference
            return processor if _renders(processor) else None

        from .builtins.variables import opus_resolve_spec as builtin
        from .variables import resolve_spec as resolve_all

        impl = self._sole_impl(self.pm.hook.opus_resolve_spec)
        alone = impl is not None and impl.function is builtin

        def resolve(
            task: Task, spec: Mapping[str, Any], variables: Mapping[str, Any]
        ) -> dict[str, Any]:
            api_version = task.api_version
            if api_version in renderers:
                processor = renderers[api_version]
            else:
                processor = renderers[api_version] = renderer(api_version)
            render = None if processor is None else partial(processor.render_reference, spec)
            if alone:
                return resolve_all(
                    spec, variables, task_name=task.name, sources=sources, render=render
                )
            resolved: dict[str, Any] | None = self._first_result(
                "opus_resolve_spec",
                task=task,
                spec=spec,
                variables=variables,
                command=command,
                context=context,
                render=render,
                sources=sources,
            )
            if resolved is None:
                raise PluginError(
                    "no plugin resolved the task spec (is builtin-variables disabled?)"
                )
            return resolved

        return resolve

    def process_task(self, task: Task, ctx: TaskContext) -> Result:
        """Run the action; outputs that are not JSON fail it (``OutputError``), so the
        driver rolls it back like any failed action."""
        if not self._processors_loaded:
            self.processors()
        return _checked(task, ctx, self._first_result("opus_process_task", task=task, ctx=ctx))

    def action_runner(self) -> Callable[[Task, TaskContext], Result]:
        """:meth:`process_task` for many actions (a batch of refreshes before apply/plan, the
        actions of a run on the thread executor): the hook and its implementations are
        looked up once, not per action. With exactly one plain implementation and no one
        watching hook calls, it is called directly."""
        if not self._processors_loaded:
            self.processors()
        caller = self.pm.hook.opus_process_task
        impl = self._sole_impl(caller)
        call: Callable[[Task, TaskContext], Any]
        if impl is not None and type(impl.plugin) is TaskProcessingHook:
            call = _dispatcher(impl.plugin.registry)
        elif impl is not None and tuple(impl.argnames) == ("task", "ctx"):
            call = impl.function
        else:

            def call(task: Task, ctx: TaskContext) -> Any:
                return caller(task=task, ctx=ctx)

        def act(task: Task, ctx: TaskContext) -> Result:
            return _checked(task, ctx, call(task, ctx))

        return act

    def _first_result(self, hook: str, **kwargs: Any) -> Any:
        """Call a ``firstresult`` hook that runs for every task.

        With exactly one implementation that is not a wrapper (the builtin, as a rule) it
        is called directly: what pluggy would return, without its per-call work.
        """
        caller = getattr(self.pm.hook, hook)
        impl = self._sole_impl(caller)
        if impl is not None:
            return impl.function(*[kwargs[name] for name in impl.argnames])
        return caller(**kwargs)

    def _sole_impl(self, caller: Any) -> Any:
        """The hook's one implementation when it may be called directly (no wrapper, no one
        watching hook calls), else ``None``: call through pluggy."""
        impls = caller.get_hookimpls()
        if len(impls) == 1 and self._unobserved():
            impl = impls[0]
            if not (impl.hookwrapper or impl.wrapper):
                return impl
        return None

    def _unobserved(self) -> bool:
        """Whether no one watches hook calls (``OPUS_TRACE_PLUGINS``, pluggy's
        ``add_hookcall_monitoring``): pluggy swaps its inner call function when they do."""
        return (
            not self._tracing
            and self._plain_hookexec is not None
            and getattr(self.pm, "_inner_hookexec", None) is self._plain_hookexec
        )

    def _notify(self, hook: str, **kwargs: Any) -> None:
        caller = getattr(self.pm.hook, hook)
        if not caller.get_hookimpls():  # nobody listens: no call per task
            return
        try:
            caller(**kwargs)
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
        self.variable_sources()
        return {
            "plugins": [info.to_dict() for info in self.info.values()],
            "processors": {
                api: {
                    "plugin": registry.owner(api),
                    "class": f"{type(p).__module__}.{type(p).__qualname__}",
                    "actions": list(p.supported_actions()),
                    "max_concurrency": p.max_concurrency,
                    "conflict": registry.conflicts.get(api),
                }
                for api, p in registry.items()
            },
            "commands": {
                cmd: {"action": action, "plugin": self._command_owners[cmd]}
                for cmd, action in sorted(commands.items())
            },
            "conflicts": dict(registry.conflicts),
            "state_backends": self.state_schemes(),
            "variable_sources": dict(sorted(self._source_owners.items())),
            "plugin_config": sorted(self.plugin_config),
            "disabled": sorted(self.disabled),
        }


def _mapping(owner: str, hook: str, value: Any) -> Mapping[Any, Any]:
    """``value``, the result of ``owner``'s ``hook``, when it is a mapping (or None)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise PluginError(
            f"plugin {owner!r}: {hook} returned {type(value).__name__} {value!r:.80}, not a mapping"
        )
    return value


def _version() -> str:
    from . import __version__

    return __version__


def _dist_name(ep: Any) -> str | None:
    return ep.dist.name if ep.dist else None


_Result: Any = None  # opus.model.Result, imported on first use (`opus --help` needs no model)


def _dispatcher(registry: ProcessorRegistry) -> Callable[[Task, TaskContext], Any]:
    """What the builtin ``opus_process_task`` does (the processor's ``run_action``), with
    each apiVersion's method for an action looked up once: for a batch of actions."""
    from .processor import TaskProcessor

    methods: dict[tuple[str, str], Callable[[Task, TaskContext], Any]] = {}

    def call(task: Task, ctx: TaskContext) -> Any:
        key = (task.api_version, ctx.action)
        method = methods.get(key)
        if method is None:
            processor = registry.get(task.api_version)
            if (
                getattr(type(processor), "run_action", None) is TaskProcessor.run_action
                and ctx.action in PROCESSOR_ACTIONS
            ):
                method = getattr(processor, ctx.action)
            else:  # run_action overridden (or an unknown action): it decides

                def method(task: Task, ctx: TaskContext, processor: Any = processor) -> Any:
                    return processor.run_action(ctx.action, task, ctx)

            methods[key] = method
        return method(task, ctx)

    return call


def _checked(task: Task, ctx: TaskContext, value: Any) -> Result:
    """What an action returned, as a :class:`Result`; outputs that are not JSON fail it."""
    result: Result = value if type(value) is _Result else _coerce(value)
    if result.outputs:
        check_outputs(task.name, ctx.action, result.outputs)
    return result


def _coerce(value: Any) -> Result:
    global _Result
    if _Result is None:
        from .model import Result

        _Result = Result
    coerced: Result = _Result.coerce(value)
    return coerced


_default_render: Any = None


def _renders(processor: TaskProcessor) -> bool:
    """Whether ``processor`` overrides ``TaskProcessor.render_reference``."""
    global _default_render
    if _default_render is None:  # imported on first use: start-up does not need it
        from .processor import TaskProcessor

        _default_render = TaskProcessor.render_reference
    return type(processor).render_reference is not _default_render
