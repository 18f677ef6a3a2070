"""A real ``opus apply`` killed with SIGKILL loses nothing it finished, and the next run resumes.

The run is three chains of ten slow tasks (0.1 s each) with SQLite state. To kill it at a
known point, the test creates the processors' *hold* file once some tasks are done and
waits until every chain is blocked in its next task: then every finished task has been
saved and reported, and nothing else is in flight.
"""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest
from helpers_cli import (
    json_out,
    reaped,
    run_opus,
    start_opus,
    statuses,
    task,
    wait_for,
    write_manifest,
)
from helpers_procs import SLOW, events_of, read_events

from opus.state.sqlite import SQLiteStateBackend

CHAINS, LENGTH = 3, 10
pytestmark = pytest.mark.slow


def chain_tasks() -> list[dict]:
    docs = []
    for c in range(CHAINS):
        for i in range(LENGTH):
            name = f"c{c}-{i:02d}"
            depends = [f"c{c}-{i - 1:02d}"] if i else []
            docs.append(task(SLOW, name, {"value": name, "delay": 0.1}, depends=depends))
    return docs


def reported_created(stderr: str) -> set[str]:
    """Tasks the CLI reported as created (its per-task lines on stderr)."""
    return set(re.findall(r"^(\S+): created\b", stderr, flags=re.MULTILINE))


def recorded(db: Path, context: str = "default") -> dict[str, str]:
    """``{task: status}`` of every record in the state database (read by a fresh client)."""
    with SQLiteStateBackend(f"sqlite:///{db}") as backend:
        return {r.name: r.status for r in backend.list_records(context)}


@pytest.fixture
def crash_setup(tmp_path: Path) -> tuple[Path, str, Path]:
    manifest = write_manifest(tmp_path / "chains.yaml", chain_tasks())
    db = tmp_path / "state" / "state.db"
    return manifest, f"sqlite:///{db}", db


def test_sigkill_mid_run_loses_nothing_and_the_next_run_resumes(
    tmp_path: Path, crash_setup: tuple[Path, str, Path]
) -> None:
    manifest, url, db = crash_setup
    first = start_opus(tmp_path, "apply", "-f", str(manifest), "--state", url)
    with reaped(first):
        wait_for(
            lambda: len(events_of(tmp_path, "done")) >= 3 * CHAINS,
            what="some tasks done",
            alive=first,
        )
        (tmp_path / "hold").touch()
        wait_for(
            lambda: len(events_of(tmp_path, "holding")) == CHAINS,
            what="every chain held",
            alive=first,
        )
        first.send_signal(signal.SIGKILL)
        _, stderr = first.communicate(timeout=10)
    assert first.returncode == -signal.SIGKILL

    held = set(events_of(tmp_path, "holding"))
    before = recorded(db)
    reported = reported_created(stderr)
    finished = set(events_of(tmp_path, "done", first.pid))
    assert 3 * CHAINS <= len(before) < CHAINS * LENGTH
    assert set(before.values()) == {"done"}
    # Exactly what was reported done was recorded, and every action that finished was saved.
    assert reported == set(before) == finished
    assert not held & set(before)
    # The killed run's lock is still there, naming its pid.
    with SQLiteStateBackend(url) as backend:
        lock = backend.get_lock("default")
        assert lock is not None and lock.pid == first.pid
        killed_run = backend.get_run(lock.run_id)
    assert killed_run is not None and killed_run.pid == first.pid

    (tmp_path / "hold").unlink()
    second = run_opus(tmp_path, "apply", "-f", str(manifest), "--state", url, "--output", "json")
    assert second.returncode == 0, second.stderr
    assert "taking over the lock" in second.stderr
    assert f"pid {first.pid}" in second.stderr
    result = statuses(json_out(second))
    assert len(result) == CHAINS * LENGTH
    for name, (status, action) in result.items():
        if name in before:
            assert (status, action) == ("unchanged", None), name
        else:
            assert (status, action) == ("done", "create"), name
    # The second run called the processor only for what was not recorded.
    redone = set(events_of(tmp_path, "start", second_pid(tmp_path, first.pid)))
    assert redone == set(result) - set(before)
    after = recorded(db)
    assert set(after) == set(result) and set(after.values()) == {"done"}
    with SQLiteStateBackend(url) as backend:
        assert backend.get_lock("default") is None
        # The killed run no longer shows as running: it ended with its last recorded task.
        killed = backend.get_run(killed_run.run_id)
        assert killed is not None and killed.status == "interrupted"
        assert killed.summary == {"done": len(before)}
        last = max(h.at for name in before for h in backend.history("default", name))
        assert killed.finished_at == last


def second_pid(workdir: Path, first_pid: int) -> int:
    """The pid of the one other process that wrote events."""
    pids = {p for _, _, p, _ in read_events(workdir)} - {first_pid}
    assert len(pids) == 1, pids
    return pids.pop()


def test_sigkill_at_an_arbitrary_moment_keeps_state_consistent(
    tmp_path: Path, crash_setup: tuple[Path, str, Path]
) -> None:
    """Killed wherever it is: reported ⊆ recorded, the file is sound, a rerun converges."""
    manifest, url, db = crash_setup
    first = start_opus(tmp_path, "apply", "-f", str(manifest), "--state", url)
    with reaped(first):
        wait_for(
            lambda: len(events_of(tmp_path, "done")) >= 2 * CHAINS + 1,
            what="tasks done",
            alive=first,
        )
        first.send_signal(signal.SIGKILL)
        _, stderr = first.communicate(timeout=10)
    before = recorded(db)
    reported = reported_created(stderr)
    assert reported <= set(before)
    # At most one completion per chain can be saved but not yet reported.
    assert len(set(before) - reported) <= CHAINS
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    second = run_opus(tmp_path, "apply", "-f", str(manifest), "--state", url, "--output", "json")
    assert second.returncode == 0, second.stderr
    result = statuses(json_out(second))
    assert {n for n, (s, _) in result.items() if s == "unchanged"} == set(before)
    assert set(recorded(db)) == set(result)
    third = run_opus(tmp_path, "apply", "-f", str(manifest), "--state", url, "--output", "json")
    assert {s for s, _ in statuses(json_out(third)).values()} == {"unchanged"}


def test_sigterm_interrupts_cleanly_with_exit_130(
    tmp_path: Path, crash_setup: tuple[Path, str, Path]
) -> None:
    """SIGTERM (like Ctrl-C) lets running tasks finish, saves them, frees the lock, exits 130."""
    manifest, url, db = crash_setup
    first = start_opus(tmp_path, "apply", "-f", str(manifest), "--state", url, "-o", "json")
    with reaped(first):
        wait_for(lambda: len(events_of(tmp_path, "done")) >= CHAINS, what="tasks done", alive=first)
        first.send_signal(signal.SIGTERM)
        stdout, stderr = first.communicate(timeout=20)
    assert first.returncode == 130, stderr
    report = json_out(subprocess.CompletedProcess([], 130, stdout, stderr))
    assert report["interrupted"] is True
    done = {n for n, (s, _) in statuses(report).items() if s == "done"}
    assert done == set(recorded(db))
    assert done == set(events_of(tmp_path, "done"))
    with SQLiteStateBackend(url) as backend:
        assert backend.get_lock("default") is None
        (run,) = backend.list_runs("default")
        assert run.status == "interrupted"
