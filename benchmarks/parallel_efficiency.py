"""Parallel efficiency: independent sleeping tasks at several parallelism levels.

    python benchmarks/parallel_efficiency.py [--tasks 200] [--sleep 0.05]
                                             [--parallelism 1 10 50] [--executors local dask]

Each task sleeps ``--sleep`` seconds. The ideal wall time at parallelism ``p`` is
``ceil(tasks / p) * sleep`` (the critical path of independent tasks in waves of ``p``);
efficiency is ideal / measured. The Dask executor uses a LocalCluster of worker processes
on 127.0.0.1, started (and warmed up) before the timing. Target: >= 90% at parallelism 10
with the local executor.
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Any

from opus import Engine, Plugins, TaskProcessor
from opus.executors import make_executor

API = "bench-sleep/v1"


class Sleeper(TaskProcessor):
    """Sleeps ``spec.sleep`` seconds (I/O-like work that does not hold the GIL)."""

    api_version = API

    def create(self, task: Any, ctx: Any) -> dict[str, Any]:
        time.sleep(ctx.spec["sleep"])
        return {"slept": ctx.spec["sleep"]}


def tasks(n: int, sleep: float) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": API,
            "kind": "Sleep",
            "metadata": {"name": f"s{i}"},
            "spec": {"sleep": sleep},
        }
        for i in range(n)
    ]


def measure(executor_name: str, parallelism: int, n: int, sleep: float) -> float:
    engine = Engine(
        state="memory://",
        plugins=Plugins(entry_points=False),
        parallelism=parallelism,
        executor=make_executor(executor_name),
    )
    engine.register_processor(Sleeper)
    with engine:
        warm = engine.run("apply", tasks(min(n, parallelism), 0.0), context="warm-up")
        assert warm.ok, warm.counts()
        started = time.perf_counter()
        result = engine.run("apply", tasks(n, sleep))
        elapsed = time.perf_counter() - started
    assert result.ok, result.counts()
    return elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--sleep", type=float, default=0.05)
    parser.add_argument("--parallelism", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--executors", nargs="+", default=["local", "dask"])
    args = parser.parse_args(argv)

    print(f"{args.tasks} independent tasks x {args.sleep * 1000:.0f} ms sleep, memory state")
    print(f"{'executor':<9} {'p':>4} {'ideal s':>8} {'wall s':>8} {'efficiency':>10}")
    for name in args.executors:
        for p in args.parallelism:
            ideal = math.ceil(args.tasks / p) * args.sleep
            try:
                wall = measure(name, p, args.tasks, args.sleep)
            except Exception as exc:  # e.g. dask not installed
                print(f"{name:<9} {p:>4} {ideal:8.2f}   skipped: {exc}")
                break
            print(f"{name:<9} {p:>4} {ideal:8.2f} {wall:8.2f} {ideal / wall:9.1%}", flush=True)


if __name__ == "__main__":
    main()
