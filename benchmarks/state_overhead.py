"""State overhead per task: ``save`` (record + history entry, one transaction) and ``get``.

    python benchmarks/state_overhead.py [--tasks 1000 10000] [--postgres URL]

Prints milliseconds per task for the memory backend and SQLite (WAL with
``synchronous=NORMAL``, the default, and ``synchronous=FULL``), and PostgreSQL when a URL is
given (or ``OPUS_TEST_POSTGRES_URL`` is set). Target: SQLite under 0.2 ms per task.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable

from opus.model import HistoryEntry, TaskState, checksum
from opus.state.base import StateBackend
from opus.state.memory import MemoryStateBackend
from opus.state.sqlite import SQLiteStateBackend


def realistic(i: int, run_id: str) -> tuple[TaskState, HistoryEntry]:
    """A task record and history entry of the size a real resource has (~1 KB of JSON)."""
    spec = {
        "image": f"registry.example.com/team/service-{i}:1.{i % 50}.3",
        "replicas": 3,
        "env": {f"VAR_{k}": f"value-{k}-{i}" for k in range(12)},
        "ports": [{"name": "http", "port": 8080}, {"name": "metrics", "port": 9090}],
        "labels": {"app": f"service-{i}", "tier": "backend", "team": "platform"},
        "resources": {"cpu": "500m", "memory": "512Mi"},
    }
    now = time.time()
    state = TaskState(
        context="bench", name=f"task-{i:05d}", api_version="k8s/v1", kind="Deployment",
        applied_spec=spec, spec_checksum=checksum(spec),
        outputs={"url": f"https://service-{i}.example.com", "id": f"res-{i}", "ready": True},
        resource_checksum=checksum([i]), status="done", created_at=now, updated_at=now,
        run_id=run_id,
    )  # fmt: skip
    entry = HistoryEntry(
        run_id=run_id, context="bench", name=state.name, action="create", status="done",
        at=now, duration_s=0.012, spec_checksum=state.spec_checksum,
    )  # fmt: skip
    return state, entry


def measure(make: Callable[[], StateBackend], tasks: int) -> tuple[float, float]:
    """(save ms per task, get ms per task) on a fresh backend."""
    backend = make()
    try:
        items = [realistic(i, "run-bench") for i in range(tasks)]
        backend.contexts()  # open (create, migrate) outside the timing
        started = time.perf_counter()
        for state, entry in items:
            backend.save(state, entry)
        saved = time.perf_counter() - started
        started = time.perf_counter()
        for state, _ in items:
            assert backend.get("bench", state.name) is not None
        read = time.perf_counter() - started
    finally:
        backend.close()
    return saved * 1000 / tasks, read * 1000 / tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--postgres", default=os.environ.get("OPUS_TEST_POSTGRES_URL"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        counter = iter(range(1_000_000))
        kinds: dict[str, Callable[[], StateBackend]] = {
            "memory": MemoryStateBackend,
            "sqlite (WAL, synchronous=NORMAL)": lambda: SQLiteStateBackend(
                f"sqlite:///{tmp}/n{next(counter)}.db"
            ),
            "sqlite (WAL, synchronous=FULL)": lambda: SQLiteStateBackend(
                f"sqlite:///{tmp}/f{next(counter)}.db?synchronous=full"
            ),
        }
        if args.postgres:
            from opus.state.postgres import PostgresStateBackend

            sep = "&" if "?" in args.postgres else "?"

            def postgres() -> StateBackend:
                return PostgresStateBackend(
                    f"{args.postgres}{sep}schema=bench_{os.getpid()}_{next(counter)}"
                )

            kinds["postgresql (local)"] = postgres

        print(f"{'backend':34} {'tasks':>7} {'save ms/task':>13} {'get ms/task':>12}")
        for label, make in kinds.items():
            for tasks in args.tasks:
                save_ms, get_ms = measure(make, tasks)
                print(f"{label:34} {tasks:>7} {save_ms:>13.4f} {get_ms:>12.4f}", flush=True)
        if args.postgres:
            _drop_bench_schemas(args.postgres)


def _drop_bench_schemas(url: str) -> None:
    import psycopg

    from opus.state.postgres import parse_postgres_url

    with psycopg.connect(parse_postgres_url(url)[0], autocommit=True) as conn:
        for (schema,) in conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (f"bench_{os.getpid()}_%",)
        ).fetchall():
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


if __name__ == "__main__":
    main()
