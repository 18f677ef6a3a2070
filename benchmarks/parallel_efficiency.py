"""Parallel efficiency: independent sleeping tasks at several parallelism levels.

    python benchmarks/parallel_efficiency.py [--tasks 200] [--sleep 0.2] [--repeat 3]
                                             [--parallelism 10 50]
                                             [--executors local dask dask://?processes=0]

Each task sleeps ``--sleep`` seconds. The ideal wall time at parallelism ``p`` is
``ceil(tasks / p) * sleep`` (the critical path of independent tasks in waves of ``p``);
efficiency is ideal / measured (median of ``--repeat`` runs), and the overhead per task is
the slot time lost per task, ``(wall * p - tasks * sleep) / tasks``. Dask executors use a
private LocalCluster on 127.0.0.1 sized to the parallelism (``dask``: one worker process
with ``p`` threads; ``dask://?processes=N``: N worker processes; ``dask://?processes=0``:
worker threads in this process), started and warmed up before the timing.
That one-off start-up (cluster start, workers importing opus, the first run's warm-up) is
printed beside it, with the efficiency of a single run that has to pay for it.
Targets for 200 ms tasks: >= 85% at p=10 and >= 70% at p=50 (a warm cluster).
"""

from __future__ import annotations

import argparse
import math
import statistics
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


def measure(
    executor_name: str, parallelism: int, n: int, sleep: float, repeat: int
) -> tuple[float, float]:
    """``(median wall of a run, one-off start-up)``; the start-up (a Dask cluster starting,
    workers importing opus and unpickling the processors) is the warm-up run's wall time."""
    begun = time.perf_counter()
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
        startup = time.perf_counter() - begun
        walls = []
        for i in range(repeat):
            started = time.perf_counter()
            result = engine.run("apply", tasks(n, sleep), context=f"run-{i}")
            walls.append(time.perf_counter() - started)
            assert result.ok, result.counts()
    return statistics.median(walls), startup


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--sleep", type=float, default=0.2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--parallelism", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--executors", nargs="+", default=["local", "dask", "dask://?processes=0"])
    args = parser.parse_args(argv)

    print(
        f"{args.tasks} independent tasks x {args.sleep * 1000:.0f} ms sleep, memory state, "
        f"median of {args.repeat}"
    )
    print(
        f"{'executor':<20} {'p':>4} {'ideal s':>8} {'wall s':>8} {'efficiency':>10} "
        f"{'overhead ms/task':>16} {'start-up s':>10} {'eff. incl. start-up':>19}"
    )
    for name in args.executors:
        for p in args.parallelism:
            ideal = math.ceil(args.tasks / p) * args.sleep
            try:
                wall, startup = measure(name, p, args.tasks, args.sleep, args.repeat)
            except Exception as exc:  # e.g. dask not installed
                print(f"{name:<20} {p:>4} {ideal:8.2f}   skipped: {exc}")
                break
            overhead = (wall * p - args.tasks * args.sleep) / args.tasks * 1000
            print(
                f"{name:<20} {p:>4} {ideal:8.2f} {wall:8.2f} {ideal / wall:9.1%} {overhead:16.1f} "
                f"{startup:10.2f} {ideal / (wall + startup):18.1%}",
                flush=True,
            )


if __name__ == "__main__":
    main()
