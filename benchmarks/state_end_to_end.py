"""State overhead per task through the engine: memory vs SQLite, end to end.

    python benchmarks/state_end_to_end.py [--tasks 1000 10000] [--repeat 3] [--full]
                                          [--profile]

Runs ``Engine.run("apply", ...)`` over N independent no-op tasks, on a fresh state each time
(so every task is a ``create`` and one committed ``save``), and again over the same state
(every task ``unchanged``: no writes). The memory backend's time is the cost of the engine
itself; SQLite's extra time per task is what durable state adds. Target: under 0.2 ms per
task for a fresh apply. ``--full`` adds SQLite with ``synchronous=full`` (an fsync per task);
``--profile`` prints where the SQLite run spends its time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opus import Engine, Plugins, Task, TaskContext, TaskProcessor
from opus.state.base import StateBackend
from opus.state.memory import MemoryStateBackend
from opus.state.sqlite import SQLiteStateBackend

TARGET_MS = 0.2


class Noop(TaskProcessor):
    """Does nothing, returns one small output."""

    api_version = "bench/v1"

    def create(self, task: Task, ctx: TaskContext) -> dict[str, Any]:
        return {"id": task.name}

    update = create


def make_tasks(n: int) -> list[Task]:
    return [
        Task("bench/v1", "Noop", {"name": f"t{i:05d}"}, {"index": i, "label": f"task {i}"})
        for i in range(n)
    ]


def timed_apply(state: StateBackend, tasks: list[Task]) -> tuple[float, dict[str, int]]:
    """Seconds taken by one ``apply`` of ``tasks`` on ``state`` and its status counts."""
    engine = Engine(state=state, plugins=Plugins(entry_points=False), parallelism=10)
    engine.register_processor(Noop)
    started = time.perf_counter()
    result = engine.run("apply", tasks, context="bench")
    took = time.perf_counter() - started
    assert result.ok, result.counts()
    return took, result.counts()


def best_of(
    repeat: int, make: Callable[[], StateBackend], tasks: list[Task]
) -> tuple[float, float]:
    """Best (fresh apply, unchanged apply) seconds over ``repeat`` fresh backends."""
    fresh, again = [], []
    for _ in range(repeat):
        with make() as state:
            took, counts = timed_apply(state, tasks)
            assert counts == {"done": len(tasks)}, counts
            fresh.append(took)
            took, counts = timed_apply(state, tasks)
            assert counts == {"unchanged": len(tasks)}, counts
            again.append(took)
    return min(fresh), min(again)


def sqlite_factory(workdir: Path, synchronous: str = "normal") -> Callable[[], StateBackend]:
    counter = iter(range(1_000_000))

    def make() -> StateBackend:
        path = workdir / f"state-{synchronous}-{next(counter)}.db"
        return SQLiteStateBackend(f"sqlite:///{path}?synchronous={synchronous}")

    return make


def profile_sqlite(workdir: Path, tasks: list[Task]) -> str:
    """The top functions (by own time) of one fresh SQLite apply (driver thread only)."""
    state = SQLiteStateBackend(f"sqlite:///{workdir}/profiled.db")
    profiler = cProfile.Profile()
    profiler.enable()
    timed_apply(state, tasks)
    profiler.disable()
    state.close()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--full", action="store_true", help="also SQLite synchronous=full")
    parser.add_argument("--profile", action="store_true", help="profile one SQLite apply")
    args = parser.parse_args(argv)

    header = (
        f"{'tasks':>6}  {'backend':<14} {'apply s':>8} {'ms/task':>8} "
        f"{'added ms/task':>13}  {'unchanged s':>11} {'added ms/task':>13}"
    )
    print(header)
    print("-" * len(header))
    worst = 0.0
    with tempfile.TemporaryDirectory(prefix="opus-bench-") as tmp:
        workdir = Path(tmp)
        backends: list[tuple[str, Callable[[], StateBackend]]] = [
            ("memory", MemoryStateBackend),
            ("sqlite", sqlite_factory(workdir)),
        ]
        if args.full:
            backends.append(("sqlite full", sqlite_factory(workdir, "full")))
        for n in args.tasks:
            tasks = make_tasks(n)
            repeat = args.repeat if n <= 2000 else max(1, args.repeat - 1)
            base_fresh = base_again = 0.0
            for name, make in backends:
                fresh, again = best_of(repeat, make, tasks)
                if name == "memory":
                    base_fresh, base_again = fresh, again
                added = (fresh - base_fresh) / n * 1000
                added_again = (again - base_again) / n * 1000
                if name == "sqlite":
                    worst = max(worst, added)
                print(
                    f"{n:>6}  {name:<14} {fresh:>8.3f} {fresh / n * 1000:>8.3f} "
                    f"{added:>13.3f}  {again:>11.3f} {added_again:>13.3f}"
                )
        if args.profile:
            print()
            print(profile_sqlite(workdir, make_tasks(args.tasks[0])))
    verdict = "OK" if worst < TARGET_MS else "OVER"
    print(f"\nSQLite adds at most {worst:.3f} ms per task (target < {TARGET_MS} ms): {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
