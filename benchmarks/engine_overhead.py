"""Engine overhead per task: no-op tasks through ``Engine.run`` with memory state.

    python benchmarks/engine_overhead.py [--tasks 1000 10000 100000] [--shapes chain fanout tree]
                                         [--parallelism 10] [--repeat 3] [--no-memory] [--no-cli]
                                         [--inline] [--profile SHAPE:N]

First the *floor*: a no-op submitted to a ``ThreadPoolExecutor`` (at most ``--parallelism`` in
flight) and collected through a completion queue by the submitting thread, per task -- the
hand-off every run pays. Then for each shape (a chain, one root fanned out to every other
task, a binary tree whose every edge is a ``${VAR:parent:v}`` reference) and size, the wall
time of ``engine.run("apply", ...)`` (validation included) with memory state, the overhead per
task in microseconds, its ratio to the floor measured in the same run, the *shape floor*
(the same graph's no-ops through a ``ThreadPoolExecutor`` by a driver that only counts
dependencies: a chain's hand-offs are paid one after another, a wide graph's overlap) and
the ratio to it, the *minimal driver* (the least a driver that keeps state does with the same
manifests -- each task's references put in, its spec's sha256, a record and a history row,
its dependents released -- in plain Python through a ``ThreadPoolExecutor``; see
:func:`minimal_driver_once`) and the ratio to it, and the peak memory
allocated during the run (tracemalloc, measured in a separate run because tracing slows
Python down). Times are medians of ``--repeat`` runs. Then the 10,000-task tree end to end
through the CLI (``python -m opus apply`` in a subprocess, SQLite state, a no-op processor
loaded with ``-p``). With ``--inline``, a column with the same run on an executor that runs
each action in the driver thread, at once: the Python work per task, without any hand-off.

Targets: engine <= 2x the floor, flat from 1k to 100k tasks; peak memory <= 2 KB per task.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import json
import os
import pstats
import queue
import re
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from opus import Engine, Plugins, TaskProcessor
from opus.executors.base import Done, Executor, run_action

API = "bench/v1"


class NoOp(TaskProcessor):
    """Does nothing and outputs one value."""

    api_version = API

    def create(self, task: Any, ctx: Any) -> dict[str, Any]:
        return {"v": 1}


def manifest(name: str, deps: list[str] | None = None, **spec: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if deps:
        metadata["dependencies"] = [{"tasks": deps}]
    return {"apiVersion": API, "kind": "Noop", "metadata": metadata, "spec": spec}


def chain(n: int) -> list[dict[str, Any]]:
    return [manifest(f"t{i}", [f"t{i - 1}"] if i else None) for i in range(n)]


def fanout(n: int) -> list[dict[str, Any]]:
    return [manifest("t0")] + [manifest(f"t{i}", ["t0"]) for i in range(1, n)]


def tree(n: int) -> list[dict[str, Any]]:
    """A binary tree; node ``i`` reads output ``v`` of its parent ``(i - 1) // 2``."""
    return [manifest("t0")] + [
        manifest(f"t{i}", parent=f"${{VAR:t{(i - 1) // 2}:v}}") for i in range(1, n)
    ]


SHAPES = {"chain": chain, "fanout": fanout, "tree": tree}


class InlineExecutor(Executor):
    """Runs each action in the driver thread when it is started (no threads, no hand-off)."""

    name = "inline"

    def start(self, plugins: Plugins, max_workers: int) -> None:
        self.plugins = plugins

    def submit(self, task: Any, ctx: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(run_action(self.plugins, task, ctx))
        except Exception as exc:  # noqa: BLE001 - the action's error, in its future
            future.set_exception(exc)
        return future

    def start_action(self, task: Any, ctx: Any, done: Done) -> None:
        try:
            value, error = run_action(self.plugins, task, ctx), None
        except Exception as exc:  # noqa: BLE001 - reported as the action's error
            value, error = None, exc
        done(value, error)

    def shutdown(self) -> None:
        pass


def run_once(tasks: list[dict[str, Any]], parallelism: int, inline: bool = False) -> float:
    engine = Engine(
        state="memory://",
        plugins=Plugins(entry_points=False),
        parallelism=parallelism,
        executor=InlineExecutor() if inline else None,
    )
    engine.register_processor(NoOp)
    with engine:
        gc.collect()
        started = time.perf_counter()
        result = engine.run("apply", tasks)
        elapsed = time.perf_counter() - started
    assert result.ok and len(result.tasks) == len(tasks), result.counts()
    return elapsed


def _noop() -> int:
    return 1


def floor_once(n: int, parallelism: int) -> float:
    """Seconds to hand ``n`` no-ops to a thread pool, ``parallelism`` at a time, collected."""
    done: queue.SimpleQueue[Future[int]] = queue.SimpleQueue()
    with ThreadPoolExecutor(max_workers=parallelism) as pool:
        gc.collect()
        started = time.perf_counter()
        submitted = collected = 0
        while collected < n:
            while submitted < n and submitted - collected < parallelism:
                pool.submit(_noop).add_done_callback(done.put)
                submitted += 1
            done.get().result()
            collected += 1
        return time.perf_counter() - started


def shape_floor_once(tasks: list[dict[str, Any]], parallelism: int) -> float:
    """Seconds to run the same graph's no-ops through a ``ThreadPoolExecutor`` with the least
    a driver can do: count each task's unfinished dependencies, submit a task (at most
    ``parallelism`` in flight) when they reach zero, collect through a completion queue.

    The floor of :func:`floor_once` keeps ``parallelism`` no-ops in flight, which only a
    wide graph allows: each task of a chain waits for the one before, so its hand-offs
    are paid one after another. This is the floor of the graph as it is.
    """
    waiting: dict[str, int] = {}
    dependents: dict[str, list[str]] = {}
    for doc in tasks:
        meta = doc["metadata"]
        deps = [d for entry in meta.get("dependencies", ()) for d in entry["tasks"]]
        parent = doc["spec"].get("parent")
        if parent:  # a ${VAR:tN:v} reference is a dependency as well
            deps.append(parent[len("${VAR:") :].split(":")[0])
        waiting[meta["name"]] = len(deps)
        for dep in deps:
            dependents.setdefault(dep, []).append(meta["name"])
    ready = [name for name, count in waiting.items() if count == 0]
    done: queue.SimpleQueue[tuple[str, Future[int]]] = queue.SimpleQueue()
    with ThreadPoolExecutor(max_workers=parallelism) as pool:
        gc.collect()
        started = time.perf_counter()
        in_flight = finished = 0
        while finished < len(tasks):
            while ready and in_flight < parallelism:
                name = ready.pop()
                pool.submit(_noop).add_done_callback(lambda f, n=name: done.put((n, f)))
                in_flight += 1
            name, future = done.get()
            future.result()
            in_flight -= 1
            finished += 1
            for dependent in dependents.get(name, ()):
                waiting[dependent] -= 1
                if waiting[dependent] == 0:
                    ready.append(dependent)
        return time.perf_counter() - started


#: A spec value that is one whole ``${VAR:task:key}`` reference (all the tree uses).
_REFERENCE = re.compile(r"\$\{VAR:([^:}]+):([^}]+)\}")


def minimal_driver_once(tasks: list[dict[str, Any]], parallelism: int) -> float:
    """Seconds for the least a driver that keeps state can do with the same manifests,
    written as plainly as Python allows, through a ``ThreadPoolExecutor``.

    It reads each manifest's dependencies and references, and for each task: puts its
    dependencies' outputs into its spec, takes the spec's sha256 (what tells the next run
    whether it changed), hands the processor's ``create`` to the pool, and on completion
    keeps the outputs, a record (a dict) and a history row (a tuple) and releases the
    task's dependents. No validation, hooks, contexts, outcomes or report: what is left
    when everything an engine adds to this is taken away. Timed from the manifests, as
    ``Engine.run`` is.
    """
    processor = NoOp()
    gc.collect()
    started = time.perf_counter()
    waiting: dict[str, int] = {}
    dependents: dict[str, list[str]] = {}
    specs: dict[str, dict[str, Any]] = {}
    references: dict[str, list[tuple[str, str, str]]] = {}
    for doc in tasks:
        meta, spec = doc["metadata"], doc["spec"]
        name = meta["name"]
        found = [
            (key, match[1], match[2])
            for key, value in spec.items()
            if type(value) is str and (match := _REFERENCE.fullmatch(value))
        ]
        deps = [d for entry in meta.get("dependencies", ()) for d in entry["tasks"]]
        deps += [task for _, task, _ in found]
        specs[name], references[name], waiting[name] = spec, found, len(deps)
        for dep in deps:
            dependents.setdefault(dep, []).append(name)
    outputs: dict[str, dict[str, Any]] = {}
    records: dict[str, dict[str, Any]] = {}
    history: list[tuple[str, str, str, float]] = []
    ready = [name for name, count in waiting.items() if count == 0]
    done: queue.SimpleQueue[tuple[str, str, Future[dict[str, Any]]]] = queue.SimpleQueue()
    with ThreadPoolExecutor(max_workers=parallelism) as pool:
        in_flight = finished = 0
        while finished < len(tasks):
            while ready and in_flight < parallelism:
                name = ready.pop()
                spec = dict(specs[name])
                for key, task, output in references[name]:
                    spec[key] = outputs[task][output]
                text = json.dumps(spec, sort_keys=True, separators=(",", ":"))
                digest = hashlib.sha256(text.encode()).hexdigest()
                pool.submit(processor.create, spec, None).add_done_callback(
                    lambda f, n=name, d=digest: done.put((n, d, f))
                )
                in_flight += 1
            name, digest, future = done.get()
            outputs[name] = result = future.result()
            in_flight -= 1
            finished += 1
            records[name] = {"name": name, "checksum": digest, "outputs": result}
            history.append((name, "create", "succeeded", time.time()))
            for dependent in dependents.get(name, ()):
                waiting[dependent] -= 1
                if waiting[dependent] == 0:
                    ready.append(dependent)
    elapsed = time.perf_counter() - started
    assert len(records) == len(history) == len(tasks), (len(records), len(tasks))
    return elapsed


def peak_memory(tasks: list[dict[str, Any]], parallelism: int) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        run_once(tasks, parallelism)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def cli_tree(n: int, parallelism: int) -> tuple[float, int]:
    """Seconds for ``python -m opus apply`` of an ``n``-task tree with SQLite state (the
    workspace of ``compare_doit.py``: the same tree, no-op plugin and files)."""
    from compare_doit import write_workspace

    with tempfile.TemporaryDirectory(prefix="opus-bench-") as tmp:
        root = Path(tmp)
        write_workspace(root, n)
        manifests = root / "tasks"
        env = {**os.environ, "PYTHONPATH": str(root)}
        command = [
            sys.executable,
            "-m",
            "opus",
            "-q",
            "-p",
            "bench_noop",
            "apply",
            "-f",
            str(manifests),
            "--state",
            f"sqlite:///{root / 'state.db'}",
            "--parallelism",
            str(parallelism),
            "--output",
            "json",
        ]
        started = time.perf_counter()
        proc = subprocess.run(command, env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(f"CLI run failed ({proc.returncode}): {proc.stderr[-2000:]}")
        return elapsed, proc.returncode


def profile(spec: str, parallelism: int) -> None:
    shape, _, size = spec.partition(":")
    tasks = SHAPES[shape](int(size or 10000))
    profiler = cProfile.Profile()
    profiler.enable()
    run_once(tasks, parallelism)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--shapes", nargs="+", choices=sorted(SHAPES), default=list(SHAPES))
    parser.add_argument("--parallelism", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per figure (median)")
    parser.add_argument("--no-memory", action="store_true", help="skip the tracemalloc runs")
    parser.add_argument("--no-cli", action="store_true", help="skip the CLI run")
    parser.add_argument("--cli-tasks", type=int, default=10000)
    parser.add_argument("--inline", action="store_true", help="add the inline-executor column")
    parser.add_argument("--profile", metavar="SHAPE:N", help="print a cProfile of one run")
    args = parser.parse_args(argv)
    if args.profile:
        profile(args.profile, args.parallelism)
        return

    floors = {}
    for n in args.tasks:
        floor_once(min(n, 1000), args.parallelism)
        floors[n] = statistics.median(floor_once(n, args.parallelism) for _ in range(args.repeat))
    print(
        f"engine overhead, memory state, thread executor, parallelism {args.parallelism}, "
        f"median of {args.repeat}"
    )
    print(
        f"{'shape':<8} {'tasks':>7} {'wall s':>8} {'us/task':>8} {'floor us':>9} "
        f"{'x floor':>8} {'shape us':>9} {'x shape':>8} {'min us':>7} {'x min':>6} "
        f"{'peak MB':>8} {'KB/task':>8}" + (f" {'inline us':>9}" if args.inline else "")
    )
    for shape in args.shapes:
        for n in args.tasks:
            tasks = SHAPES[shape](n)
            run_once(tasks[: min(n, 200)], args.parallelism)  # warm up imports and caches
            elapsed = statistics.median(
                run_once(tasks, args.parallelism) for _ in range(args.repeat)
            )
            peak = None if args.no_memory else peak_memory(tasks, args.parallelism)
            mem = f"{peak / 2**20:8.1f} {peak / n / 1024:8.2f}" if peak is not None else " " * 17
            per_task, floor = elapsed / n * 1e6, floors[n] / n * 1e6
            shape_floor_once(tasks[: min(n, 1000)], args.parallelism)
            own = statistics.median(
                shape_floor_once(tasks, args.parallelism) for _ in range(args.repeat)
            )
            own_floor = own / n * 1e6
            minimal_driver_once(tasks[: min(n, 1000)], args.parallelism)
            least = statistics.median(
                minimal_driver_once(tasks, args.parallelism) for _ in range(args.repeat)
            )
            minimal = least / n * 1e6
            inline = ""
            if args.inline:
                alone = statistics.median(
                    run_once(tasks, args.parallelism, inline=True) for _ in range(args.repeat)
                )
                inline = f" {alone / n * 1e6:9.1f}"
            print(
                f"{shape:<8} {n:>7} {elapsed:8.3f} {per_task:8.1f} {floor:9.1f} "
                f"{per_task / floor:7.2f}x {own_floor:9.1f} {per_task / own_floor:7.2f}x "
                f"{minimal:7.1f} {per_task / minimal:5.2f}x {mem}{inline}",
                flush=True,
            )
    if not args.no_cli:
        elapsed, _ = cli_tree(args.cli_tasks, args.parallelism)
        per_task = elapsed / args.cli_tasks * 1000
        print(
            f"\nCLI end to end: {args.cli_tasks}-task tree, SQLite state, "
            f"`python -m opus apply`: {elapsed:.2f} s ({per_task:.3f} ms/task)"
        )


if __name__ == "__main__":
    main()
