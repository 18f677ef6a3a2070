from __future__ import annotations

import inspect
import types

import click
import pytest
from support_processors import CreateOnlyProcessor, RecordingProcessor, make_task

import opus
from opus import (
    CommandError,
    Engine,
    Hook,
    PluginError,
    Plugins,
    TaskProcessor,
    hookimpl,
    hookspecs,
)


def module_plugin(name: str, **hooks) -> types.ModuleType:
    module = types.ModuleType(name)
    for hook_name, func in hooks.items():
        setattr(module, hook_name, hookimpl(func))
    return module


def test_builtins_are_registered_as_plugins(plugins: Plugins) -> None:
    names = set(plugins.info)
    assert {"builtin-commands", "builtin-variables", "builtin-state", "builtin-dispatch"} <= names
    assert all(plugins.info[n].origin == "builtin" for n in names)
    assert plugins.command_map()["drift"] == "detect_drift"
    assert set(plugins.state_schemes()) >= {"memory", "sqlite", "postgresql"}


def test_plugins_add_and_remap_commands() -> None:
    plugin = module_plugin("deployer", opus_command_map=lambda: {"deploy": "apply", "plan": "plan"})
    plugins = Plugins(entry_points=False, plugins=[plugin])
    commands = plugins.command_map()
    assert commands["deploy"] == "apply" and commands["create"] == "create"
    assert plugins.command_owner("deploy") == "deployer"
    assert plugins.command_owner("plan") == "deployer"  # a plugin overrides the builtin


def test_unknown_command_lists_known_ones(engine: Engine) -> None:
    with pytest.raises(CommandError) as err:
        engine.run("launch", [make_task("a")], context="dev")
    assert "unknown command 'launch'" in str(err.value) and "apply" in str(err.value)


def test_mapping_to_unknown_action_is_an_error() -> None:
    plugin = module_plugin("bad", opus_command_map=lambda: {"go": "explode"})
    with pytest.raises(CommandError, match="unknown action 'explode'"):
        Plugins(entry_points=False, plugins=[plugin]).command_map()


def test_same_processor_class_twice_is_harmless(plugins: Plugins) -> None:
    plugin = module_plugin("p1", opus_register_processors=lambda: [RecordingProcessor])
    plugins.register(plugin)
    plugins.register_processor(RecordingProcessor)
    assert "test/v1" in plugins.processors()


def test_two_classes_claiming_one_api_version_name_both() -> None:
    class Other(TaskProcessor):
        api_version = "test/v1"

    one = module_plugin("one", opus_register_processors=lambda: [RecordingProcessor])
    two = module_plugin("two", opus_register_processors=lambda: [Other])
    plugins = Plugins(entry_points=False, plugins=[one, two])
    registry = plugins.processors()  # listing still works: the conflict is recorded
    assert plugins.describe()["processors"]["test/v1"]["conflict"] == registry.conflicts["test/v1"]
    with pytest.raises(PluginError) as err:
        registry.get("test/v1")
    text = str(err.value)
    assert "RecordingProcessor" in text and "Other" in text and "'one'" in text and "'two'" in text
    engine = Engine(state="memory://", plugins=plugins)
    with pytest.raises(opus.ManifestError, match="claimed by two processors"):
        engine.run("apply", [make_task("a")], context="dev")


def test_non_processor_and_missing_api_version_are_rejected() -> None:
    class NoVersion(TaskProcessor):
        pass

    with pytest.raises(PluginError, match="not a TaskProcessor"):
        Plugins(
            entry_points=False,
            plugins=[module_plugin("x", opus_register_processors=lambda: [object()])],
        ).processors()
    with pytest.raises(PluginError, match="has no api_version"):
        Plugins(
            entry_points=False,
            plugins=[module_plugin("y", opus_register_processors=lambda: [NoVersion])],
        ).processors()


def test_hookimpl_matching_no_spec_is_rejected() -> None:
    with pytest.raises(PluginError, match="opus_no_such_hook"):
        Plugins(entry_points=False, plugins=[module_plugin("typo", opus_no_such_hook=lambda: 1)])


def test_disabled_builtin_and_essential_builtins(monkeypatch) -> None:
    plugins = Plugins(entry_points=False, disabled=["builtin-state"])
    assert "builtin-state" not in plugins.info
    with pytest.raises(opus.StateError, match="no state backend"):
        plugins.state_backend("memory://")
    with pytest.raises(PluginError, match="cannot be disabled"):
        Plugins(entry_points=False, disabled=["builtin-dispatch"])
    monkeypatch.setenv("OPUS_DISABLE_PLUGINS", "builtin-variables, other")
    plugins = Plugins(entry_points=False)
    assert "builtin-variables" not in plugins.info and "other" in plugins.disabled


def test_unknown_api_version_lists_known(engine: Engine) -> None:
    with pytest.raises(opus.ManifestError) as err:
        engine.run("apply", [make_task("a", api_version="nope/v9")], context="dev")
    assert "nope/v9" in str(err.value) and "test/v1" in str(err.value)


def test_unsupported_action_is_rejected_before_anything_runs(engine, processor) -> None:
    tasks = [make_task("a"), make_task("b", api_version="create-only/v1")]
    with pytest.raises(opus.ManifestError, match="does not support action 'delete'"):
        engine.run("delete", tasks, context="dev")
    assert processor.calls == []


def test_unimplemented_action_raises_not_supported() -> None:
    ctx = opus.TaskContext("a", {}, "update", "dev", "update", "r1")
    with pytest.raises(opus.NotSupportedError, match="does not support action 'update'"):
        CreateOnlyProcessor().update(make_task("a"), ctx)
    assert CreateOnlyProcessor.supported_actions() == ("create",)


class EveryHook(Hook):
    """Implements every lifecycle hook and records the calls."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl
    def opus_run_start(self, run_id, command, action, context, tasks):
        self.seen.append("opus_run_start")

    @hookimpl
    def opus_task_start(self, task, ctx):
        self.seen.append("opus_task_start")

    @hookimpl
    def opus_task_done(self, task, ctx, outcome):
        self.seen.append("opus_task_done")

    @hookimpl
    def opus_task_failed(self, task, ctx, outcome):
        self.seen.append("opus_task_failed")

    @hookimpl
    def opus_run_finish(self, result):
        self.seen.append("opus_run_finish")

    @hookimpl(wrapper=True)
    def opus_process_task(self, task, ctx):
        self.seen.append("opus_process_task")
        return (yield)

    @hookimpl
    def opus_resolve_spec(self, task, spec, variables, command, context):
        self.seen.append("opus_resolve_spec")  # returns None: the builtin resolves

    @hookimpl
    def opus_register_processors(self):
        self.seen.append("opus_register_processors")
        return [RecordingProcessor]

    @hookimpl
    def opus_command_map(self):
        self.seen.append("opus_command_map")
        return {}

    @hookimpl
    def opus_state_backend(self, url):
        self.seen.append("opus_state_backend")

    @hookimpl
    def opus_state_schemes(self):
        self.seen.append("opus_state_schemes")
        return []

    @hookimpl
    def opus_configure(self, plugin_config):
        self.seen.append("opus_configure")

    @hookimpl
    def opus_variable_sources(self):
        self.seen.append("opus_variable_sources")
        return {}

    @hookimpl
    def opus_executor(self, url):
        self.seen.append("opus_executor")

    @hookimpl
    def opus_cli_commands(self, cli):
        self.seen.append("opus_cli_commands")


def test_every_hookspec_is_documented_and_exercised() -> None:
    specs = {
        n: f for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if n.startswith("opus_")
    }
    for name, func in specs.items():
        doc = inspect.getdoc(func) or ""
        assert len(doc.split()) >= 12, f"{name} needs a docstring saying when it is called"
    hook = EveryHook()
    plugins = Plugins(entry_points=False, plugins=[hook])
    engine = Engine(state="memory://", plugins=plugins)
    tasks = [
        make_task("ok"),
        make_task("bad", spec={"fail_on": ["create"]}),
        make_task("after", dependencies=[{"tasks": ["bad"]}]),
    ]
    engine.run("apply", tasks, context="dev", keep_going=True)
    plugins.describe()
    plugins.add_cli_commands(click.Group("opus"))
    assert set(specs) == set(hook.seen), set(specs) ^ set(hook.seen)


def test_hook_errors_in_notifications_do_not_break_the_run(engine, caplog) -> None:
    class Broken(Hook):
        @hookimpl
        def opus_task_done(self, task, ctx, outcome):
            raise ValueError("boom")

    engine.register(Broken())
    result = engine.run("apply", [make_task("a")], context="dev")
    assert result.ok and "opus_task_done hook failed" in caplog.text


def test_tracing_env_logs_hook_calls(monkeypatch, caplog) -> None:
    import logging

    monkeypatch.setenv("OPUS_TRACE_PLUGINS", "1")
    plugins = Plugins(entry_points=False)
    with caplog.at_level(logging.DEBUG, logger="opus.plugins"):
        plugins.command_map()
        plugins.state_backend("memory://")
    assert "pluggy:" in caplog.text and "opus_state_backend" in caplog.text


def test_module_plugins_yield_the_same_hooks_as_with_plain_pluggy() -> None:
    """opus looks through a module plugin's names faster than pluggy does (values that are
    no function are skipped at once): the hook implementations found are the same."""
    import pluggy

    module = types.ModuleType("many_names")
    module.opus_command_map = hookimpl(lambda: {"ship": "apply"})  # type: ignore[attr-defined]
    module.helper = lambda: None  # type: ignore[attr-defined]  # a function, not a hook
    module.opus_state_schemes = staticmethod(hookimpl(lambda: {}))  # type: ignore[attr-defined]
    module.CONSTANT, module.Klass, module.data = 3, type("K", (), {}), {"a": 1}  # type: ignore[attr-defined]
    module.opus_cli_commands = "not a function"  # type: ignore[attr-defined]
    plain = pluggy.PluginManager("opus")
    plain.add_hookspecs(hookspecs)
    plain.register(module)
    plugins = Plugins(entry_points=False, plugins=[module])
    assert plugins.info["many_names"].hooks == sorted(
        caller.name for caller in plain.get_hookcallers(module) or []
    )
    assert plugins.info["many_names"].hooks == ["opus_command_map", "opus_state_schemes"]
    assert plugins.command_map()["ship"] == "apply"
    typo = types.ModuleType("typo")
    typo.opus_comand_map = hookimpl(lambda: {})  # type: ignore[attr-defined]
    with pytest.raises(PluginError, match="opus_comand_map"):
        Plugins(entry_points=False, plugins=[typo])  # still refused, as pluggy refuses it
