"""Refresh overhead: a no-op ``apply`` of N recorded tasks, with and without refresh.

    python benchmarks/refresh_overhead.py [--tasks 10000] [--parallelism 10] [--repeat 3]

Each task's processor has a cheap ``detect_drift`` (returns "in sync"). The tasks are applied
once, then the no-op ``engine.run("apply", ...)`` is timed with ``refresh=True`` (every task
is sent to the executor for ``detect_drift`` before deciding) and ``refresh=False`` (state is
trusted; nothing reaches the executor), on memory and SQLite state. Prints the best of
``--repeat`` interleaved runs and the ratio. Target: refresh at most 1.5x the ``--no-refresh`` time.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from opus import Engine, Plugins, Result, TaskProcessor

API = "bench-refresh/v1"


class Cheap(TaskProcessor):
    """Creates nothing; its drift check is a constant."""

    api_version = API

    def create(self, task: Any, ctx: Any) -> dict[str, Any]:
        return {"v": 1}

    def detect_drift(self, task: Any, ctx: Any) -> Result:
        return Result(drifted=False)


def tasks(n: int) -> list[dict[str, Any]]:
    return [
        {"apiVersion": API, "kind": "Cheap", "metadata": {"name": f"t{i}"}, "spec": {"i": i}}
        for i in range(n)
    ]


def timed(engine: Engine, items: list[dict[str, Any]], refresh: bool) -> float:
    gc.collect()
    started = time.perf_counter()
    result = engine.run("apply", items, refresh=refresh)
    elapsed = time.perf_counter() - started
    assert result.ok and set(result.counts()) == {"unchanged"}, result.counts()
    return elapsed


def measure(url: str, n: int, parallelism: int, repeat: int) -> tuple[float, float]:
    items = tasks(n)
    engine = Engine(state=url, plugins=Plugins(entry_points=False), parallelism=parallelism)
    engine.register_processor(Cheap)
    with engine:
        assert engine.run("apply", items).ok
        on, off = [], []
        for _ in range(repeat):  # interleaved, so a busy moment hurts both alike
            on.append(timed(engine, items, True))
            off.append(timed(engine, items, False))
    return min(on), min(off)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--parallelism", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        backends = {"memory": "memory://", "sqlite": f"sqlite:///{Path(tmp) / 'state.db'}"}
        print(f"no-op apply of {args.tasks} tasks, parallelism {args.parallelism}")
        print(f"{'state':<8} {'refresh':>10} {'--no-refresh':>13} {'ratio':>7}")
        worst = 0.0
        for name, url in backends.items():
            on, off = measure(url, args.tasks, args.parallelism, args.repeat)
            worst = max(worst, on / off)
            print(f"{name:<8} {on:>9.2f}s {off:>12.2f}s {on / off:>6.2f}x")
    print(f"target: ratio <= 1.5x -> {'met' if worst <= 1.5 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
