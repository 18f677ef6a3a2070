"""Hooks are called through pluggy: wrappers, ordering, variable sources, executors, config."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from support_processors import RecordingProcessor, make_task

import opus
from opus import Engine, Hook, PluginError, Plugins, Result, TaskProcessor, hookimpl
from opus.executors import ThreadExecutor


class Flaky(TaskProcessor):
    """Fails the first ``failures`` creates of each task, then succeeds."""

    api_version = "flaky/v1"

    def __init__(self, failures: int = 1) -> None:
        self.failures = failures
        self.attempts: dict[str, int] = {}
        self.lock = threading.Lock()

    def create(self, task, ctx):
        with self.lock:
            self.attempts[task.name] = self.attempts.get(task.name, 0) + 1
            attempt = self.attempts[task.name]
        if attempt <= self.failures:
            raise ConnectionError(f"attempt {attempt} failed")
        time.sleep(0.02)
        return {"attempt": attempt}

    def rollback(self, task, ctx):
        return None


class Timer(Hook):
    """A ``wrapper=True`` implementation that times every action."""

    def __init__(self) -> None:
        self.durations: dict[str, float] = {}

    @hookimpl(wrapper=True)
    def opus_process_task(self, task, ctx):
        start = time.perf_counter()
        try:
            return (yield)
        finally:
            self.durations[f"{task.name}:{ctx.action}"] = time.perf_counter() - start


class OldStyleAudit(Hook):
    """A ``hookwrapper=True`` (old-style) implementation that sees the outcome."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bool]] = []

    @hookimpl(hookwrapper=True)
    def opus_process_task(self, task, ctx):
        outcome = yield
        self.seen.append((task.name, ctx.action, outcome.exception is None))


class Retry(Hook):
    """Retries a failed action by calling the rest of the hook again through pluggy."""

    def __init__(self, plugins: Plugins, attempts: int) -> None:
        self.plugins = plugins
        self.attempts = attempts
        self.retried: list[str] = []

    @hookimpl(wrapper=True)
    def opus_process_task(self, task, ctx):
        try:
            return (yield)
        except ConnectionError:
            rest = self.plugins.pm.subset_hook_caller("opus_process_task", remove_plugins=[self])
            for attempt in range(2, self.attempts + 1):
                self.retried.append(f"{task.name}#{attempt}")
                try:
                    return rest(task=task, ctx=ctx)
                except ConnectionError:
                    if attempt == self.attempts:
                        raise
            raise


def test_wrapper_times_every_action_and_old_style_wrapper_sees_outcomes() -> None:
    timer, audit = Timer(), OldStyleAudit()
    plugins = Plugins(entry_points=False, plugins=[timer, audit])
    plugins.register_processor(Flaky(failures=0))
    result = Engine(state="memory://", plugins=plugins).run(
        "apply", [make_task("a", api_version="flaky/v1")], context="dev"
    )
    assert result.ok
    assert timer.durations["a:create"] >= 0.02
    assert audit.seen == [("a", "create", True)]


def test_wrapper_retries_a_failing_action() -> None:
    plugins = Plugins(entry_points=False)
    retry = Retry(plugins, attempts=3)
    plugins.register(retry)
    flaky = Flaky(failures=2)
    plugins.register_processor(flaky)
    result = Engine(state="memory://", plugins=plugins).run(
        "apply", [make_task("a", api_version="flaky/v1")], context="dev"
    )
    assert result.ok, result.tasks["a"].error
    assert result.tasks["a"].outputs == {"attempt": 3}
    assert retry.retried == ["a#2", "a#3"]

    # out of attempts: the task fails with the processor's own error
    plugins = Plugins(entry_points=False)
    plugins.register(Retry(plugins, attempts=2))
    plugins.register_processor(Flaky(failures=5))
    result = Engine(state="memory://", plugins=plugins).run(
        "apply", [make_task("b", api_version="flaky/v1")], context="dev"
    )
    assert not result.ok and "attempt 2 failed" in (result.tasks["b"].error or "")


def test_a_plugin_wins_over_the_builtins_because_builtins_are_trylast() -> None:
    mine = opus.state.memory.MemoryStateBackend("memory://")

    class Mine(Hook):
        @hookimpl
        def opus_state_backend(self, url):
            return mine if url == "memory://" else None

        @hookimpl
        def opus_command_map(self):
            return {"apply": "plan"}

    # registered *before* the builtins would not matter either: trylast decides
    plugins = Plugins(entry_points=False, plugins=[Mine()])
    assert plugins.state_backend("memory://") is mine
    assert plugins.command_map()["apply"] == "plan"
    assert plugins.command_owner("apply") == "Mine"
    assert plugins.command_owner("delete") == "builtin-commands"


# -- variable sources ---------------------------------------------------------------------


class Secrets(Hook):
    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values
        self.asked: list[str] = []

    @hookimpl
    def opus_variable_sources(self):
        def secret(path: str) -> Any:
            self.asked.append(path)
            if path == "explode":
                raise RuntimeError("vault unreachable")
            return self.values[path]

        return {"SECRET": secret}


@pytest.fixture
def secret_engine(processor: RecordingProcessor) -> tuple[Engine, Secrets]:
    secrets = Secrets({"db/password": "s3cret", "db/port": 5432})
    plugins = Plugins(entry_points=False, plugins=[secrets])
    plugins.register_processor(processor)
    return Engine(state="memory://", plugins=plugins), secrets


def test_plugin_variable_source_resolves_and_keeps_types(secret_engine, processor) -> None:
    engine, secrets = secret_engine
    tasks = [
        make_task(
            "db",
            spec={
                "password": "${SECRET:db/password}",
                "port": "${SECRET: db/port }",
                "dsn": "pg://u:${SECRET:db/password}@h:${SECRET:db/port}",
                "shell": "echo ${HOME:-x} $${SECRET:literal}",
            },
        )
    ]
    result = engine.run("apply", tasks, context="dev")
    assert result.ok, result.tasks["db"].error
    spec = processor.calls[0][2]
    assert spec["password"] == "s3cret" and spec["port"] == 5432
    assert spec["dsn"] == "pg://u:s3cret@h:5432"
    assert spec["shell"] == "echo ${HOME:-x} ${SECRET:literal}"  # unknown prefix: text
    assert "literal" not in secrets.asked


def test_plugin_prefixes_reach_the_parser_graph_and_validation(secret_engine) -> None:
    engine, _ = secret_engine
    assert engine.plugins.variable_prefixes() == {"VAR", "ENV", "SECRET"}
    with pytest.raises(opus.OpusError) as err:
        engine.validate("apply", [make_task("a", spec={"x": "${SECRET:}"})], context="dev")
    assert "task 'a', spec.x: malformed reference '${SECRET:}'" in str(err.value)
    # without the plugin, ${SECRET:} is plain text and valid
    plain = Engine(state="memory://", plugins=Plugins(entry_points=False))
    plain.register_processor(RecordingProcessor())
    plain.validate("apply", [make_task("a", spec={"x": "${SECRET:}"})], context="dev")


def test_failing_source_names_task_and_spec_path(secret_engine) -> None:
    engine, _ = secret_engine
    result = engine.run(
        "apply",
        [make_task("a", spec={"deep": [{"pw": "${SECRET:explode}"}]}), make_task("b", spec={})],
        context="dev",
        keep_going=True,
    )
    error = result.tasks["a"].error or ""
    assert "task 'a', spec.deep[0].pw: SECRET source failed: RuntimeError: vault unreachable" in (
        error
    )
    result = engine.run("apply", [make_task("c", spec={"pw": "${SECRET:nope}"})], context="dev")
    assert "task 'c', spec.pw: SECRET source has no value for 'nope'" in (
        result.tasks["c"].error or ""
    )
    assert result.tasks["b" if "b" in result.tasks else "c"].status in ("done", "failed")


def test_env_is_a_builtin_source_a_plugin_may_override(monkeypatch, processor) -> None:
    monkeypatch.setenv("OPUS_T_SOURCE", "from-env")

    class FakeEnv(Hook):
        @hookimpl
        def opus_variable_sources(self):
            return {"ENV": lambda name: f"fake-{name}"}

    plugins = Plugins(entry_points=False)
    assert plugins.variable_sources()["ENV"]("OPUS_T_SOURCE") == "from-env"
    plugins = Plugins(entry_points=False, plugins=[FakeEnv()])
    assert plugins.variable_sources()["ENV"]("X") == "fake-X"


def test_bad_and_conflicting_sources_are_refused() -> None:
    def source_plugin(name: str, sources: dict[str, Any]) -> Hook:
        class P(Hook):
            @hookimpl
            def opus_variable_sources(self):
                return sources

        hook = P()
        hook.name = name
        return hook

    for sources, message in (
        ({"VAR": str}, "VAR is reserved"),
        ({"secret": str}, "a prefix is upper case"),
        ({"SECRET": "not callable"}, "is not callable"),
    ):
        with pytest.raises(PluginError, match=message):
            Plugins(entry_points=False, plugins=[source_plugin("p", sources)]).variable_sources()
    both = [source_plugin("one", {"SECRET": str}), source_plugin("two", {"SECRET": str})]
    with pytest.raises(PluginError, match=r"'SECRET' is claimed by two plugins: '(two|one)'"):
        Plugins(entry_points=False, plugins=both).variable_sources()


# -- executors -------------------------------------------------------------------------------


class CountingExecutor(ThreadExecutor):
    name = "counting"

    def __init__(self) -> None:
        super().__init__()
        self.submitted: list[str] = []

    def submit(self, task, ctx):
        self.submitted.append(task.name)
        return super().submit(task, ctx)


def test_executor_plugin_is_chosen_by_url_and_builtins_serve_local() -> None:
    made: list[str] = []

    class Executors(Hook):
        @hookimpl
        def opus_executor(self, url):
            if url.startswith("counting://"):
                made.append(url)
                return CountingExecutor()
            return None

    plugins = Plugins(entry_points=False, plugins=[Executors()])
    plugins.register_processor(RecordingProcessor())
    engine = Engine(state="memory://", plugins=plugins, executor="counting://x")
    assert made == ["counting://x"] and isinstance(engine.executor, CountingExecutor)
    assert engine.run("apply", [make_task("a"), make_task("b")], context="dev").ok
    assert sorted(engine.executor.submitted) == ["a", "b"]
    assert type(Engine(state="memory://", plugins=plugins).executor) is ThreadExecutor
    with pytest.raises(opus.ExecutorError, match="unknown executor 'nope://'"):
        Engine(state="memory://", plugins=plugins, executor="nope://")


# -- plugin settings ------------------------------------------------------------------------


def test_plugin_config_is_handed_to_plugins_also_to_later_ones(caplog) -> None:
    class Configurable(Hook):
        def __init__(self, name: str) -> None:
            self.name = name
            self.settings: dict[str, Any] | None = None

        @hookimpl
        def opus_configure(self, plugin_config):
            self.settings = dict(plugin_config.get(self.name, {}))

    early = Configurable("early")
    config = {"early": {"token": "t"}, "late": {"region": "eu"}, "ghost": {}}
    plugins = Plugins(entry_points=False, plugins=[early], plugin_config=config)
    assert early.settings == {"token": "t"}
    late = Configurable("late")
    plugins.register(late)
    assert late.settings == {"region": "eu"}
    assert "plugin_config.ghost: no plugin named 'ghost'" in caplog.text
    with pytest.raises(PluginError, match="plugin_config.early: expected a mapping"):
        Plugins(entry_points=False, plugin_config={"early": [1]})

    class Strict(Hook):
        @hookimpl
        def opus_configure(self, plugin_config):
            raise ValueError("region is required")

    with pytest.raises(PluginError, match="opus_configure failed: ValueError: region is req"):
        Plugins(entry_points=False, plugins=[Strict()])


def test_result_of_wrapped_call_is_coerced() -> None:
    class Replace(Hook):
        @hookimpl(wrapper=True)
        def opus_process_task(self, task, ctx):
            result = yield
            return Result(outputs={**result.outputs, "audited": True})

    plugins = Plugins(entry_points=False, plugins=[Replace()])
    plugins.register_processor(RecordingProcessor())
    result = Engine(state="memory://", plugins=plugins).run(
        "apply", [make_task("a")], context="dev"
    )
    assert result.tasks["a"].outputs["audited"] is True


def test_a_returned_dict_becomes_the_result_its_constructor_makes() -> None:
    # Result.coerce builds the usual Result (from a dict) without __init__: every field,
    # in order, as Result(outputs=...) sets it, and the outputs are its own copy
    returned = {"v": 1, "nested": {"k": [1, 2]}}
    made = Result.coerce(returned)
    assert type(made) is Result
    assert list(made.__dict__.items()) == list(Result(outputs=returned).__dict__.items())
    returned["v"] = 2
    assert made.outputs["v"] == 1
    assert made.details == {} and made.details is not Result.coerce({}).details


def test_a_broken_cli_commands_hook_is_a_plugin_error() -> None:
    import click

    class Broken(Hook):
        @hookimpl
        def opus_cli_commands(self, cli):
            raise TypeError("cli.command() takes no 'nmae'")

    plugins = Plugins(entry_points=False, plugins=[Broken()])
    with pytest.raises(PluginError, match="opus_cli_commands failed: TypeError: cli.command"):
        plugins.add_cli_commands(click.Group("opus"))
