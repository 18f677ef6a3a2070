"""Parallel runs on real threads: dependency order, the parallelism bound, concurrency limits."""

from __future__ import annotations

import random
import threading

import pytest
from timeline_procs import LimitedProcessor, TimelineProcessor, step

from opus import Engine, Plugins
from opus.executors import ThreadExecutor
from opus.scheduler import Scheduler


@pytest.fixture
def proc() -> TimelineProcessor:
    return TimelineProcessor()


def make_engine(proc: TimelineProcessor, **kwargs) -> Engine:
    engine = Engine(
        state=kwargs.pop("state", "memory://"), plugins=Plugins(entry_points=False), **kwargs
    )
    engine.register_processor(proc)
    return engine


def random_dag(n: int, seed: int) -> list[dict]:
    """``n`` tasks, each depending on up to three earlier ones (explicitly or by ${VAR})."""
    rng = random.Random(seed)
    tasks = []
    for i in range(n):
        deps = rng.sample(range(i), k=min(i, rng.randint(0, 3)))
        explicit = [f"t{d}" for d in deps[: len(deps) // 2]]
        implicit = {f"from_t{d}": f"${{VAR:t{d}:name}}" for d in deps[len(deps) // 2 :]}
        tasks.append(step(f"t{i}", *explicit, sleep=rng.choice([0, 0.001, 0.005]), **implicit))
    rng.shuffle(tasks)  # the input order must not matter
    return tasks


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_dependency_edge_is_respected(proc: TimelineProcessor, seed: int) -> None:
    tasks = random_dag(60, seed)
    with make_engine(proc, parallelism=8) as engine:
        result = engine.run("apply", tasks)
        graph = engine.validate("apply", tasks)
    assert result.ok and len(result.tasks) == 60
    edges = [(dep, name) for name, deps in graph.dependencies.items() for dep in deps]
    assert edges, "the generated graph has edges"
    for dep, name in edges:
        assert proc.span(dep).end <= proc.span(name).start, f"{name} started before {dep} ended"
    for spec_task in tasks:  # implicit dependencies received the upstream outputs
        ctx = proc.contexts[(spec_task["metadata"]["name"], "create")]
        for key, value in ctx.spec.items():
            if key.startswith("from_"):
                assert value == key[len("from_") :]
    assert proc.max_running > 1, "independent tasks ran in parallel"


class WideThreadExecutor(ThreadExecutor):
    """More threads than the parallelism: only the engine's scheduler bounds concurrency."""

    def start(self, plugins: Plugins, max_workers: int) -> None:
        super().start(plugins, max_workers * 4)


def test_parallelism_bound_is_reached_and_never_exceeded(proc: TimelineProcessor) -> None:
    barrier = threading.Barrier(5, timeout=10)  # only passes when five run at once
    tasks = [step(f"first{i}", barrier=barrier) for i in range(5)]
    tasks += [step(f"more{i}", sleep=0.002) for i in range(40)]
    with make_engine(proc, parallelism=5, executor=WideThreadExecutor()) as engine:
        result = engine.run("apply", tasks)
    assert result.ok, {n: o.error for n, o in result.tasks.items() if o.error}
    assert proc.max_running == 5


def test_processor_max_concurrency_is_respected(proc: TimelineProcessor) -> None:
    limited = LimitedProcessor()
    tasks = [
        step(f"lim{i}", api_version=LimitedProcessor.api_version, sleep=0.01) for i in range(10)
    ]
    tasks += [step(f"free{i}", sleep=0.01) for i in range(10)]
    with make_engine(proc, parallelism=8) as engine:
        engine.register_processor(limited)
        result = engine.run("apply", tasks)
    assert result.ok
    assert limited.max_running == 2  # its limit, although 8 slots were free
    assert len(limited.started()) == 10


def test_group_limits_are_respected(proc: TimelineProcessor) -> None:
    tasks = [step(f"db{i}", group="db", sleep=0.005) for i in range(6)]
    tasks += [step(f"web{i}", group="web", sleep=0.005) for i in range(6)]
    with make_engine(proc, parallelism=6, group_limits={"db": 1, "web": 3}) as engine:
        result = engine.run("apply", tasks)
    assert result.ok
    assert proc.group_max["db"] == 1
    assert proc.group_max["web"] <= 3
    # while one db task was running, something else ran too
    assert proc.max_running > 1


def test_fan_out_fan_in_publishes_every_output(proc: TimelineProcessor) -> None:
    tasks = [step("root", value="r")]
    tasks += [step(f"leaf{i}", value=f"${{VAR:root:value}}-{i}", sleep=0.002) for i in range(20)]
    tasks.append(step("join", value=[f"${{VAR:leaf{i}:value}}" for i in range(20)]))
    with make_engine(proc, parallelism=10) as engine:
        result = engine.run("apply", tasks)
    assert result.ok
    assert result.tasks["join"].outputs["value"] == [f"r-{i}" for i in range(20)]


def test_sqlite_state_has_every_task_after_a_parallel_run(
    proc: TimelineProcessor, tmp_path
) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    tasks = [
        step(f"t{i}", *([f"t{i - 10}"] if i >= 10 else []), value=i, sleep=0.001) for i in range(50)
    ]
    with make_engine(proc, parallelism=10, state=url) as engine:
        result = engine.run("apply", tasks, context="ci")
        assert result.ok
        records = {r.name: r for r in engine.state.list_records("ci")}
        again = engine.run("apply", tasks, context="ci")
    assert set(records) == {f"t{i}" for i in range(50)}
    assert all(
        r.status == "done" and r.outputs["value"] == int(r.name[1:]) for r in records.values()
    )
    assert {o.status for o in again.tasks.values()} == {"unchanged"}


# -- the scheduler on its own -----------------------------------------------------------------
def test_scheduler_limits_and_blocking() -> None:
    order = ["a", "b", "c", "d", "e"]
    deps = {"c": {"a"}, "d": {"c"}, "e": set()}
    limits = {"a": [("g", 1)], "b": [("g", 1)]}
    s = Scheduler(order, deps, parallelism=3, limits_of=lambda n: limits.get(n, []))
    assert s.next_task() == "a"
    assert s.next_task() == "e"  # b waits for the group slot a holds
    assert s.next_task() is None
    assert s.finish("a", succeeded=False) == ["c", "d"]  # blocked transitively
    assert s.next_task() == "b"
    assert s.not_started() == []
    s.finish("b", succeeded=True)
    s.finish("e", succeeded=True)
    assert s.next_task() is None and not s.running


def test_scheduler_global_bound() -> None:
    s = Scheduler([f"t{i}" for i in range(5)], {}, parallelism=2)
    assert [s.next_task(), s.next_task(), s.next_task()] == ["t0", "t1", None]
    s.finish("t0", succeeded=True)
    assert s.next_task() == "t2"
    assert s.not_started() == ["t3", "t4"]


def test_local_threads_are_bounded_reused_and_gone_after_the_run() -> None:
    used: set[str] = set()

    class Where(TimelineProcessor):
        def create(self, task, ctx):  # noqa: ANN001, ANN201
            used.add(threading.current_thread().name)
            return super().create(task, ctx)

    before = {t.ident for t in threading.enumerate()}
    with make_engine(Where(), parallelism=4) as engine:
        result = engine.run("apply", [step(f"t{i}", sleep=0.001) for i in range(200)])
        assert result.ok and len(result.tasks) == 200
        assert 1 < len(used) <= 4, used  # parallel, never more threads than parallelism
        assert all(name.startswith("opus-task-") for name in used)
        left = [t for t in threading.enumerate() if t.ident not in before and t.is_alive()]
    assert not left, f"threads left running after the run: {left}"


def test_an_executor_that_overrides_submit_sees_every_action(proc: TimelineProcessor) -> None:
    seen: list[str] = []

    class Watching(ThreadExecutor):
        def submit(self, task, ctx):  # noqa: ANN001, ANN201
            seen.append(f"{task.name}:{ctx.action}")
            return super().submit(task, ctx)

    with make_engine(proc, parallelism=3, executor=Watching()) as engine:
        assert engine.run("apply", [step("a"), step("b", "a")]).ok
        assert engine.run("delete", [step("a"), step("b", "a")]).ok
    assert seen == ["a:create", "b:create", "b:delete", "a:delete"]
