"""State overhead per task through the engine: memory vs SQLite, end to end.

    python benchmarks/state_end_to_end.py [--tasks 1000 10000] [--repeat 3] [--full]
                                          [--profile]

Runs ``Engine.run("apply", ...)`` over N independent no-op tasks, on a fresh state each time
(so every task is a ``create`` and one committed ``save``), and again over the same state
(every task ``unchanged``: no writes). The memory backend's time is the cost of the engine
itself; SQLite's extra time per task is what durable state adds.

The *floor* is the same records (one task upsert and one history insert per task) turned
into rows and written with plain ``sqlite3`` into a database of opus' schema, in
transactions of ``--batch`` tasks
(default: the parallelism, 10 -- the most completions the driver can have at hand at once),
and with one transaction per task; then the grouped floor again without each history index,
to show what each index costs. Target: SQLite adds at most 1.5x the grouped floor per task,
where what SQLite adds is the median, over paired runs, of an SQLite apply's time less a
memory apply's made just before or after it (the "added" columns of the table are the
difference of the two best-ofs, which moves more), less what SQLite adds to a run of one
task: the cost a run pays once, not per task (the new database file and its schema -- every
run here starts on a fresh one --, the run's record, lock and report, closing the file).
The floor pays none of that (its database is made before the clock starts); the fixed cost
is printed on its own.
``--full`` adds SQLite with ``synchronous=full`` (an fsync per commit); ``--profile`` prints
where the SQLite run spends its time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opus import Engine, Plugins, Task, TaskContext, TaskProcessor
from opus.model import HistoryEntry, TaskState
from opus.state._sql import INSERT_HISTORY, UPSERT_TASK, history_row, task_row
from opus.state.base import StateBackend
from opus.state.memory import MemoryStateBackend
from opus.state.sqlite import SQLiteStateBackend

TARGET_RATIO = 1.5


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


def paired_added(
    pairs: int,
    memory: Callable[[], StateBackend],
    sqlite: Callable[[], StateBackend],
    tasks: list[Task],
) -> float:
    """Median over ``pairs`` of (SQLite apply - memory apply) seconds, the two run back to
    back (in alternating order) on fresh backends: a difference of two runs made in the same
    moment, steadier than the difference of two best-ofs on a machine whose speed drifts."""
    differences = []
    for index in range(pairs):
        took = {}
        order = [("memory", memory), ("sqlite", sqlite)]
        for name, make in order if index % 2 == 0 else order[::-1]:
            with make() as state:
                took[name], counts = timed_apply(state, tasks)
                assert counts == {"done": len(tasks)}, counts
        differences.append(took["sqlite"] - took["memory"])
    return statistics.median(differences)


def floor_rows(n: int) -> list[tuple[tuple[Any, ...], tuple[Any, ...]]]:
    """What opus writes for ``n`` created tasks: a record row and a history row each."""
    rows = []
    for i in range(n):
        name, now = f"t{i:05d}", time.time()
        record = TaskState(
            context="bench", name=name, api_version="bench/v1", kind="Noop",
            applied_spec={"index": i, "label": f"task {i}"}, spec_checksum="c" * 64,
            outputs={"id": name}, status="done", created_at=now, updated_at=now, run_id="r",
        )  # fmt: skip
        entry = HistoryEntry(
            run_id="r", context="bench", name=name, action="create", status="done", at=now,
            duration_s=0.001, spec_checksum="c" * 64,
        )  # fmt: skip
        rows.append((task_row(record), history_row(entry)))
    return rows


def floor(workdir: Path, n: int, batch: int, drop_index: str | None = None) -> float:
    """Seconds to write ``n`` tasks' rows with plain sqlite3, ``batch`` tasks a transaction."""
    path = workdir / f"floor-{batch}-{drop_index}-{time.monotonic_ns()}.db"
    SQLiteStateBackend(f"sqlite:///{path}").list_records("bench")  # creates the schema
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    if drop_index:
        conn.execute(f"DROP INDEX {drop_index}")
    started = time.perf_counter()
    rows = floor_rows(n)  # turning records into rows (JSON columns) is part of any write
    for start in range(0, n, batch):
        chunk = rows[start : start + batch]
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(UPSERT_TASK, [r[0] for r in chunk])
        conn.executemany(INSERT_HISTORY, [r[1] for r in chunk])
        conn.execute("COMMIT")
    took = time.perf_counter() - started
    conn.close()
    return took


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
    parser.add_argument("--batch", type=int, default=10, help="tasks per floor transaction")
    parser.add_argument("--full", action="store_true", help="also SQLite synchronous=full")
    parser.add_argument("--profile", action="store_true", help="profile one SQLite apply")
    args = parser.parse_args(argv)

    header = (
        f"{'tasks':>6}  {'backend':<14} {'apply s':>8} {'ms/task':>8} "
        f"{'added ms/task':>13}  {'unchanged s':>11} {'added ms/task':>13}"
    )
    print(f"best of {args.repeat} (fewer above 2,000 tasks); floors: median of as many")
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
        # what SQLite adds to a run whatever its size (a fresh database, the run's record,
        # lock and report, closing): paid once a run, so not a cost per task
        fixed = paired_added(15, backends[0][1], backends[1][1], make_tasks(1))
        print(f"{'':>6}  SQLite adds {fixed * 1000:.2f} ms to every run (one task, fresh file)")
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
                print(
                    f"{n:>6}  {name:<14} {fresh:>8.3f} {fresh / n * 1000:>8.3f} "
                    f"{added:>13.3f}  {again:>11.3f} {added_again:>13.3f}"
                )
            floors = {
                label: statistics.median(floor(workdir, n, batch, drop) for _ in range(repeat))
                / n
                * 1000
                for label, batch, drop in (
                    (f"floor, {args.batch} tasks a commit", args.batch, None),
                    ("floor, a commit per task", 1, None),
                    ("  without history_by_task", args.batch, "history_by_task"),
                    ("  without history_by_run", args.batch, "history_by_run"),
                )
            }
            grouped = floors[f"floor, {args.batch} tasks a commit"]
            for label, ms in floors.items():
                print(f"{n:>6}  {label:<34} {ms:>8.3f} ms/task")
            pairs = 9 if n <= 2000 else max(3, repeat)  # short runs move more
            run_added = paired_added(pairs, backends[0][1], backends[1][1], tasks)
            sqlite_added = (run_added - fixed) / n * 1000
            ratio = sqlite_added / grouped
            worst = max(worst, ratio)
            print(
                f"{n:>6}  SQLite adds {sqlite_added:.3f} ms/task (median of {pairs} paired runs,"
                f" less the {fixed * 1000:.1f} ms a run) = {ratio:.2f}x the grouped floor;"
                f" {run_added / n * 1000:.3f} ms/task with it"
            )
        if args.profile:
            print()
            print(profile_sqlite(workdir, make_tasks(args.tasks[0])))
    verdict = "OK" if worst <= TARGET_RATIO else "OVER"
    print(
        f"\nSQLite adds at most {worst:.2f}x the grouped floor "
        f"(target <= {TARGET_RATIO}x): {verdict}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
