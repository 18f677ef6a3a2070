"""The Dask executor on a real LocalCluster (loopback, worker processes)."""

from __future__ import annotations

import os
import sys
import textwrap
import threading
import time
import types
from pathlib import Path
from typing import Any

import pytest
import yaml

from opus import Engine, ExecutorError, Plugins, Result, TaskProcessor
from opus.executors import make_executor

try:
    import distributed  # noqa: F401

    HAVE_DISTRIBUTED = True
except ImportError:  # pragma: no cover - the README test command installs opus[dask]
    HAVE_DISTRIBUTED = False

needs_dask = pytest.mark.skipif(
    not HAVE_DISTRIBUTED, reason="dask.distributed is not installed (pip install 'opus[dask]')"
)
pytestmark = [pytest.mark.dask, needs_dask]


class WorkerProcessor(TaskProcessor):
    """Defined in this test module, which the workers cannot import: it must be shipped."""

    api_version = "dask-test/v1"

    def create(self, task, ctx):  # noqa: ANN001
        started = time.time()
        time.sleep(ctx.spec.get("sleep", 0))
        if ctx.spec.get("fail"):
            raise RuntimeError(f"{task.name} failed on the worker")
        if ctx.spec.get("unpicklable_result"):
            # in details: a lock in outputs is refused earlier as "not JSON" (opus.output_check)
            return Result(details={"lock": threading.Lock()})
        return {
            "pid": os.getpid(),
            "started": started,
            "ended": time.time(),
            "value": ctx.spec.get("value"),
        }

    def rollback(self, task, ctx):  # noqa: ANN001
        Path(ctx.spec["rollback_marker"]).write_text(
            f"{os.getpid()} {ctx.failed_action} {ctx.error}"
        )


def step(name: str, *deps: str, **spec: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if deps:
        metadata["dependencies"] = [{"tasks": list(deps)}]
    return {
        "apiVersion": WorkerProcessor.api_version,
        "kind": "Step",
        "metadata": metadata,
        "spec": spec,
    }


@pytest.fixture(scope="module")
def executor():
    from opus.executors.dask import DaskExecutor

    executor = DaskExecutor(n_workers=2)
    yield executor
    executor.close()


@pytest.fixture
def engine(executor) -> Engine:
    engine = Engine(
        state="memory://", plugins=Plugins(entry_points=False), parallelism=4, executor=executor
    )
    engine.register_processor(WorkerProcessor)
    return engine  # not closed: that would close the shared cluster


def test_actions_run_in_worker_processes_in_dependency_order(engine: Engine) -> None:
    tasks = [
        step("a", value="A", sleep=0.05),
        step("b", value="${VAR:a:value}-b"),
        step("c", "a", value="c"),
        step("d", "b", "c", value="${VAR:b:value}+${VAR:c:value}"),
    ]
    result = engine.run("apply", tasks)
    assert result.ok, {n: o.error for n, o in result.tasks.items()}
    outputs = {n: o.outputs for n, o in result.tasks.items()}
    assert all(out["pid"] != os.getpid() for out in outputs.values())
    assert outputs["d"]["value"] == "A-b+c"
    for dep, name in [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]:
        assert outputs[dep]["ended"] <= outputs[name]["started"]
    cluster_pids = set(engine.executor.client.run(os.getpid).values())
    assert {out["pid"] for out in outputs.values()} <= cluster_pids


def test_the_cluster_is_reused_across_runs(engine: Engine) -> None:
    assert engine.run("apply", [step("w")]).ok  # started here if no test before did
    client = engine.executor.client
    assert client is not None
    assert engine.run("apply", [step("x")]).ok
    assert engine.run("apply", [step("y")]).ok
    assert engine.executor.client is client


def test_failure_and_rollback_on_a_worker(engine: Engine, tmp_path: Path) -> None:
    marker = tmp_path / "rolled-back"
    tasks = [step("bad", fail=True, rollback_marker=str(marker)), step("after", "bad")]
    result = engine.run("apply", tasks, context="dev")
    assert result.tasks["bad"].status == "rolled_back"
    assert result.tasks["bad"].error == "RuntimeError: bad failed on the worker"
    assert result.tasks["after"].status == "skipped"
    pid, action, error = marker.read_text().split(" ", 2)
    assert int(pid) != os.getpid() and action == "create"
    assert error == "RuntimeError: bad failed on the worker"
    assert engine.state.get("dev", "bad").status == "failed"


def test_unpicklable_spec_is_a_clear_error(engine: Engine) -> None:
    result = engine.run(
        "apply", [step("locked", lock=threading.Lock()), step("fine")], keep_going=True
    )
    error = result.tasks["locked"].error
    assert result.tasks["locked"].status == "failed"
    assert "task 'locked'" in error and "cannot be pickled" in error
    assert result.tasks["fine"].status == "done"


def test_unpicklable_result_is_a_clear_error(engine: Engine, tmp_path: Path) -> None:
    marker = tmp_path / "rolled-back"
    result = engine.run(
        "apply", [step("weird", unpicklable_result=True, rollback_marker=str(marker))]
    )
    outcome = result.tasks["weird"]
    assert outcome.status == "rolled_back"
    assert (
        "task 'weird'" in outcome.error and "result of 'create' cannot be pickled" in outcome.error
    )
    assert marker.exists()


def test_connecting_to_a_running_scheduler(executor) -> None:
    from opus.executors.dask import DaskExecutor

    if executor.client is None:  # run alone: no earlier test has started the cluster
        executor.start(Plugins(entry_points=False), 2)
    address = executor.client.scheduler.address
    remote = make_executor("dask://" + address.split("://", 1)[1])
    assert isinstance(remote, DaskExecutor)
    engine = Engine(state="memory://", plugins=Plugins(entry_points=False), executor=remote)
    engine.register_processor(WorkerProcessor)
    with engine:
        result = engine.run("apply", [step("remote", value=1)])
    assert result.ok and result.tasks["remote"].outputs["pid"] != os.getpid()


def test_a_processor_no_worker_can_import_is_shipped(engine: Engine) -> None:
    module = types.ModuleType("opus_test_only_in_this_process")
    exec(
        textwrap.dedent("""
        import os
        from opus import TaskProcessor

        SUFFIX = "-shipped"

        class Local(TaskProcessor):
            api_version = "local-only/v1"

            def create(self, task, ctx):
                return {"pid": os.getpid(), "name": task.name + SUFFIX}
    """),
        module.__dict__,
    )
    sys.modules[module.__name__] = module
    try:
        engine.register_processor(module.Local)
        result = engine.run(
            "apply", [{"apiVersion": "local-only/v1", "kind": "X", "metadata": {"name": "here"}}]
        )
    finally:
        del sys.modules[module.__name__]
    assert result.ok, result.tasks["here"].error
    assert result.tasks["here"].outputs["name"] == "here-shipped"
    assert result.tasks["here"].outputs["pid"] != os.getpid()


# -- no cluster needed ------------------------------------------------------------------------
def test_bad_address_fails_quickly_and_clearly() -> None:
    from opus.executors.dask import DaskExecutor

    executor = DaskExecutor("127.0.0.1:1", connect_timeout=1)
    with pytest.raises(
        ExecutorError, match=r"cannot connect to the Dask scheduler at tcp://127\.0\.0\.1:1"
    ):
        executor.start(Plugins(entry_points=False), 2)
    executor.close()


def test_an_unreachable_cluster_fails_the_run_before_it_is_recorded() -> None:
    from opus.executors.dask import DaskExecutor

    engine = Engine(
        state="memory://",
        plugins=Plugins(entry_points=False),
        executor=DaskExecutor("127.0.0.1:1", connect_timeout=1),
    )
    engine.register_processor(WorkerProcessor)
    with engine:
        with pytest.raises(ExecutorError, match="cannot connect"):
            engine.run("apply", [step("never")], context="dev")
        assert engine.state.list_runs("dev") == []
        assert engine.state.get_lock("dev") is None
        assert engine.state.list_records("dev") == []


def test_missing_distributed_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ExecutorError, match=r"install opus\[dask\]"):
        make_executor("dask")


def test_worker_environment_carries_disabled_plugins_and_hand_registered_processors() -> None:
    from opus.executors import dask as dask_executor

    plugins = Plugins(
        entry_points=False, disabled=["some-plugin"], plugin_config={"acme": {"region": "eu"}}
    )
    plugins.register_processor(WorkerProcessor)
    blob = dask_executor.worker_environment(plugins)
    # rebuilt as a worker would
    rebuilt = dask_executor.plugins_for("test-key", blob)
    try:
        assert "some-plugin" in rebuilt.disabled
        assert rebuilt.plugin_config == {"acme": {"region": "eu"}}  # opus_configure on workers
        assert WorkerProcessor.api_version in rebuilt.processors()
        assert dask_executor.plugins_for("test-key", blob) is rebuilt  # cached per process
    finally:
        dask_executor._worker_plugins.pop("test-key", None)


# -- through the CLI --------------------------------------------------------------------------
CLI_PLUGIN = textwrap.dedent("""
    import os
    import opus

    class PidProc(opus.TaskProcessor):
        api_version = "pid/v1"

        def create(self, task, ctx):
            if ctx.spec.get("fail"):
                raise RuntimeError(f"{task.name} failed on a worker")
            return {"pid": os.getpid(), "up": ctx.spec.get("up")}

        def rollback(self, task, ctx):
            return None

    @opus.hookimpl
    def opus_register_processors():
        return [PidProc]
""")


@pytest.mark.slow
def test_cli_executor_dask_runs_tasks_on_workers(tmp_path: Path) -> None:
    import json
    import subprocess

    (tmp_path / "pid_plugin.py").write_text(CLI_PLUGIN)
    manifests = tmp_path / "tasks.yaml"
    manifests.write_text(
        textwrap.dedent("""
        apiVersion: pid/v1
        kind: P
        metadata: {name: a}
        ---
        apiVersion: pid/v1
        kind: P
        metadata: {name: b}
        spec: {up: "${VAR:a:pid}"}
        ---
        apiVersion: pid/v1
        kind: P
        metadata: {name: broken}
        spec: {fail: true}
    """)
    )
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "opus",
            "-p",
            "pid_plugin",
            "apply",
            "-f",
            str(manifests),
            "--state",
            f"sqlite:///{tmp_path / 'state.db'}",
            "--executor",
            "dask",
            "--parallelism",
            "2",
            "--keep-going",
            "--output",
            "json",
        ],
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = child.communicate(timeout=120)
    assert child.returncode == 1, err
    tasks = json.loads(out)["tasks"]
    assert tasks["a"]["status"] == tasks["b"]["status"] == "done"
    assert tasks["a"]["outputs"]["pid"] != child.pid
    assert tasks["b"]["outputs"]["up"] == tasks["a"]["outputs"]["pid"]
    assert tasks["broken"]["status"] == "rolled_back"
    assert tasks["broken"]["error"] == "RuntimeError: broken failed on a worker"


# -- sizing: the LocalCluster has exactly --parallelism slots ----------------------------------
def cluster_threads(engine: Engine) -> dict[str, int]:
    client = engine.executor.client  # type: ignore[attr-defined]
    return dict(client.nthreads())


def test_default_cluster_is_one_worker_process_with_parallelism_threads() -> None:
    engine = Engine(
        state="memory://", plugins=Plugins(entry_points=False), parallelism=6, executor="dask"
    )
    engine.register_processor(WorkerProcessor)
    with engine:
        result = engine.run("apply", [step(f"s{i}", sleep=0.3) for i in range(6)], context="d")
        assert list(cluster_threads(engine).values()) == [6]
    assert result.ok
    starts = sorted(o.outputs["started"] for o in result.tasks.values())
    assert starts[-1] - starts[0] < 0.25  # all six ran at once: parallelism honoured
    assert all(o.outputs["pid"] != os.getpid() for o in result.tasks.values())


def test_processes_zero_runs_worker_threads_in_this_process() -> None:
    engine = Engine(
        state="memory://",
        plugins=Plugins(entry_points=False),
        parallelism=3,
        executor="dask://?processes=0",
    )
    engine.register_processor(WorkerProcessor)
    with engine:
        result = engine.run("apply", [step("a"), step("b", "a")], context="d")
        assert sum(cluster_threads(engine).values()) == 3
    assert result.ok and result.tasks["b"].outputs["pid"] == os.getpid()


def test_processes_n_spreads_the_slots_over_n_worker_processes() -> None:
    engine = Engine(
        state="memory://",
        plugins=Plugins(entry_points=False),
        parallelism=4,
        executor="dask://?processes=2",
    )
    engine.register_processor(WorkerProcessor)
    with engine:
        result = engine.run("apply", [step("a")], context="d")
        assert sorted(cluster_threads(engine).values()) == [2, 2]
    assert result.ok and result.tasks["a"].outputs["pid"] != os.getpid()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("dask", {"address": None}),
        ("dask://?processes=4", {"address": None, "processes": 4}),
        ("dask://sched:8786", {"address": "sched:8786"}),
    ],
)
def test_dask_urls(url: str, expected: dict[str, Any]) -> None:
    from opus.executors.dask import parse_dask_url

    assert parse_dask_url(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("dask://?threads=4", "unknown option"),
        ("dask://?processes=-1", "whole number >= 0"),
        ("dask://?processes=x", "whole number >= 0"),
        ("dask://sched:8786?processes=2", "cannot be combined with a scheduler address"),
    ],
)
def test_bad_dask_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(ExecutorError, match=message):
        make_executor(url)


def test_a_timed_out_action_on_a_worker_fails_and_the_run_goes_on(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cancellation cannot reach another process: the driver gives up after the grace."""
    from opus import run as run_module

    monkeypatch.setattr(run_module, "CANCEL_GRACE", 0.3)
    marker = tmp_path / "rolled-back"
    slow = step("slow", sleep=3, rollback_marker=str(marker))
    slow["metadata"]["timeout"] = 0.5
    started = time.monotonic()
    result = engine.run("apply", [slow, step("other", value=1)], keep_going=True)
    assert time.monotonic() - started < 3
    assert result.tasks["slow"].status == "rolled_back"
    assert "timed out after 0.5s" in result.tasks["slow"].error
    assert result.tasks["other"].status == "done"
    assert marker.exists()


class DyingProcessor(TaskProcessor):
    """Ends its worker process in the middle of the action (a crash, an OOM kill)."""

    api_version = "dask-dying/v1"

    def create(self, task, ctx):  # noqa: ANN001
        if ctx.spec.get("die"):
            os._exit(13)
        time.sleep(ctx.spec.get("sleep", 0))
        return {"pid": os.getpid()}


def test_a_worker_dying_mid_action_fails_that_task_clearly() -> None:
    import dask

    engine = Engine(
        state="memory://", plugins=Plugins(entry_points=False), parallelism=3, executor="dask"
    )
    engine.register_processor(DyingProcessor)
    tasks = [
        {"apiVersion": DyingProcessor.api_version, "kind": "D", "metadata": {"name": name},
         "spec": spec}
        for name, spec in (("dies", {"die": True, "sleep": 0}), ("lives", {"sleep": 0}))
    ]  # fmt: skip
    # No second chance on another worker: the first death is the task's failure.
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), engine:
        result = engine.run("apply", tasks[:1], context="d")
        again = engine.run("apply", tasks[1:], context="d")  # the nanny restarted the worker
    assert result.tasks["dies"].status == "failed"
    assert "the Dask cluster failed to run it" in (result.tasks["dies"].error or "")
    assert again.ok and again.tasks["lives"].status == "done"


def test_one_burst_of_results_reaches_each_its_own_task(engine: Engine) -> None:
    """Forty tasks submitted together, every third failing: the results are gathered in
    batches and each task gets its own outcome."""
    tasks = [step(f"t{i}", value=i, sleep=0.05, fail=i % 3 == 0) for i in range(40)]
    result = engine.run("apply", tasks, keep_going=True)
    for i in range(40):
        outcome = result.tasks[f"t{i}"]
        if i % 3 == 0:
            assert outcome.status == "failed" and f"t{i} failed on the worker" in outcome.error
        else:
            assert outcome.status == "done" and outcome.outputs["value"] == i


def test_payloads_use_the_standard_pickler_and_cloudpickle_when_needed() -> None:
    import pickle

    from opus.executors.dask import dumps

    plain = {"spec": [1, "two", None]}
    assert dumps(plain) == pickle.dumps(plain, protocol=pickle.HIGHEST_PROTOCOL)
    local_function = pickle.loads(dumps(lambda: 42))  # by value: pickle cannot
    assert local_function() == 42
    main_class = type("InMain", (), {"__module__": "__main__"})
    sys.modules["__main__"].InMain = main_class  # type: ignore[attr-defined]
    try:
        blob = dumps(main_class())  # pickle could, by a reference no worker can follow
    finally:
        del sys.modules["__main__"].InMain  # type: ignore[attr-defined]
    assert type(pickle.loads(blob)).__name__ == "InMain"  # cloudpickle shipped the class


def test_results_still_arrive_when_batched_fetching_fails(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batched fetching relies on a private part of distributed: should it break, every
    task is settled on its own instead of being left hanging."""
    from opus.executors import dask as dask_executor

    async def broken(client: Any, left: Any) -> None:
        raise AttributeError("'Future' object has no attribute '_state'")

    monkeypatch.setattr(dask_executor, "_settle_batches", broken)
    result = engine.run(
        "apply", [step(f"r{i}", value=i, fail=i == 2) for i in range(5)], keep_going=True
    )
    assert [result.tasks[f"r{i}"].status for i in range(5)] == [
        "done",
        "done",
        "failed",
        "done",
        "done",
    ]
    assert result.tasks["r4"].outputs["value"] == 4


def test_cli_dask_runs_shell_tasks_in_parallel_and_keeps_their_errors(tmp_path: Path) -> None:
    # first-party shell/v1 on a worker process with 4 threads: each thread asks the
    # worker's registry for the processor at once (KeyError: 'shell/v1' before), and a
    # failing command's own error (exit code, stderr) comes back to the driver
    import json

    from helpers_cli import run_opus

    commands = {f"q{i}": f"echo Q={i}" for i in range(4)} | {"bad": "echo boom >&2; exit 3"}
    docs = [
        {
            "apiVersion": "shell/v1",
            "kind": "Shell",
            "metadata": {"name": name},
            "spec": {"create": command},
        }  # fmt: skip
        for name, command in commands.items()
    ]
    (tmp_path / "tasks.yaml").write_text(yaml.safe_dump_all(docs))
    done = run_opus(
        tmp_path, "apply", "-f", "tasks.yaml", "--state", f"sqlite:///{tmp_path / 'state.db'}",
        "--executor", "dask", "--parallelism", "4", "--keep-going", "--output", "json",
        plugins=(), timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    tasks = json.loads(done.stdout)["tasks"]
    assert {f"q{i}": tasks[f"q{i}"]["status"] for i in range(4)} == {
        f"q{i}": "done" for i in range(4)
    }
    assert [tasks[f"q{i}"]["outputs"]["Q"] for i in range(4)] == ["0", "1", "2", "3"]
    error = tasks["bad"]["error"]
    assert "exited 3" in error and "boom" in error and "cannot read its result" not in error


@pytest.mark.parametrize("executor", ["dask://?processes=0", "dask://?processes=1"])
def test_a_timed_out_shell_command_on_a_worker_is_killed(tmp_path: Path, executor: str) -> None:
    # ctx.cancelled reaches a worker as a copy: the driver's cancellation is sent to the
    # workers (Client.run), which cancel the copy, and shell/v1 kills the command there --
    # in a worker process too, not only with the worker threads in opus' own process
    import json

    from helpers_cli import run_opus

    doc = {"apiVersion": "shell/v1", "kind": "Shell", "metadata": {"name": "slow", "timeout": 1},
           "spec": {"create": "echo start >> log.txt; sleep 4; echo end >> log.txt"}}  # fmt: skip
    (tmp_path / "tasks.yaml").write_text(yaml.safe_dump(doc))
    started = time.monotonic()
    done = run_opus(
        tmp_path, "apply", "-f", "tasks.yaml", "--state", f"sqlite:///{tmp_path / 's.db'}",
        "--executor", executor, "--output", "json", plugins=(), timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "timed out after 1s" in json.loads(done.stdout)["tasks"]["slow"]["error"]
    time.sleep(max(0.0, started + 6 - time.monotonic()))  # past the command's own end
    assert (tmp_path / "log.txt").read_text().split() == ["start"], "the command was killed"
