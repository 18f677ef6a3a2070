"""Context locks between real processes: refuse fast, wait with --lock-timeout, take over stale.

The first run is frozen by the processors' hold file (so it holds its lock for as long as
the test needs, with no timing guesswork) and released by deleting the file.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers_cli import (
    cli_env,
    json_out,
    reaped,
    run_opus,
    start_opus,
    statuses,
    task,
    wait_for,
    write_manifest,
)
from helpers_procs import SLOW, read_events

from opus.state.sqlite import SQLiteStateBackend

pytestmark = pytest.mark.slow

#: Takes a context's lock through the backend API, says so, then waits for stdin to close.
LOCKER = """
import os, sys, time
from opus.model import LockInfo
from opus.errors import StateError
from opus.state.sqlite import SQLiteStateBackend
url, context, host, linger = sys.argv[1:5]
with SQLiteStateBackend(url) as backend:
    info = LockInfo(context=context, run_id="locker-" + str(os.getpid()), pid=os.getpid(),
                    host=host, since=time.time())
    assert backend.try_lock(info) is None
print(info.run_id, flush=True)
if linger == "yes":
    sys.stdin.read()
"""


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, str]:
    """A held manifest (one slow task), another manifest, and the state URL."""
    first = write_manifest(tmp_path / "first.yaml", [task(SLOW, "s1", {"value": 1})])
    other = write_manifest(tmp_path / "other.yaml", [task(SLOW, "w1", {"value": 2})])
    return first, other, f"sqlite:///{tmp_path}/state.db"


def holding(workdir: Path) -> set[int]:
    """Pids of processes whose task is blocked by the hold file."""
    return {p for e, _, p, _ in read_events(workdir) if e == "holding"}


def finish(proc: subprocess.Popen[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    with reaped(proc):
        out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_second_run_is_refused_fast_naming_the_holder(
    tmp_path: Path, setup: tuple[Path, Path, str]
) -> None:
    first_manifest, other, url = setup
    (tmp_path / "hold").touch()
    first = start_opus(tmp_path, "apply", "-f", str(first_manifest), "--state", url, "-o", "json")
    try:
        wait_for(lambda: first.pid in holding(tmp_path), what="first run holding", alive=first)
        started = time.monotonic()
        second = run_opus(tmp_path, "apply", "-f", str(other), "--state", url)
        took = time.monotonic() - started
        assert first.poll() is None  # the first run still holds its lock
    finally:
        (tmp_path / "hold").unlink()
    done = finish(first)
    assert done.returncode == 0, done.stderr
    run_id = json_out(done)["run_id"]

    assert second.returncode == 4, second.stderr
    assert took < 5
    message = second.stderr
    assert "context 'default' is locked by" in message
    assert f"run {run_id} (pid {first.pid}, host {socket.gethostname()})" in message
    assert "--lock-timeout" in message
    assert not [e for e in read_events(tmp_path) if e[1] == "w1"]  # nothing ran
    with SQLiteStateBackend(url) as backend:
        assert [r.name for r in backend.list_records("default")] == ["s1"]
        assert [r.run_id for r in backend.list_runs()] == [run_id]  # the refused run left none


def test_lock_timeout_waits_for_the_holder_then_runs(
    tmp_path: Path, setup: tuple[Path, Path, str]
) -> None:
    first_manifest, other, url = setup
    (tmp_path / "hold").touch()
    first = start_opus(tmp_path, "apply", "-f", str(first_manifest), "--state", url, "-o", "json")
    second: subprocess.Popen[str] | None = None
    try:
        wait_for(lambda: first.pid in holding(tmp_path), what="first run holding", alive=first)
        second = start_opus(
            tmp_path,
            "apply",
            "-f",
            str(other),
            "--state",
            url,
            "--lock-timeout",
            "60",
            "-o",
            "json",
        )
        time.sleep(1.0)
        assert second.poll() is None, "the second run should be waiting for the lock"
    finally:
        (tmp_path / "hold").unlink()
    one, two = finish(first), finish(second)
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    assert statuses(json_out(two)) == {"w1": ("done", "create")}
    events = {(e, t): ns for e, t, _, ns in read_events(tmp_path)}
    assert events[("start", "w1")] > events[("done", "s1")]  # strictly one after the other
    with SQLiteStateBackend(url) as backend:
        assert [r.name for r in backend.list_records("default")] == ["s1", "w1"]
        assert backend.get_lock("default") is None


def test_two_contexts_run_at_the_same_time(tmp_path: Path, setup: tuple[Path, Path, str]) -> None:
    first_manifest, _, url = setup
    # Both processes open the fresh state file at once: its switch to WAL must wait for
    # the other (see test_fresh_database_open_waits_for_a_writer below).
    (tmp_path / "hold").touch()
    procs = []
    try:
        for context in ("dev", "prod"):
            procs.append(
                start_opus(
                    tmp_path,
                    "apply",
                    "-f",
                    str(first_manifest),
                    "--state",
                    url,
                    "--context",
                    context,
                    "-o",
                    "json",
                )
            )
        # Both are inside their task at once, so both hold their context's lock at once.
        wait_for(
            lambda: holding(tmp_path) == {p.pid for p in procs},
            what="both runs holding",
            alive=procs[0],
        )
        with SQLiteStateBackend(url) as backend:
            locks = {c: backend.get_lock(c) for c in ("dev", "prod")}
        assert {c: lock.pid for c, lock in locks.items() if lock} == {
            "dev": procs[0].pid,
            "prod": procs[1].pid,
        }
    finally:
        (tmp_path / "hold").unlink()
    results = [finish(p) for p in procs]
    for result in results:
        assert result.returncode == 0, result.stderr
        assert statuses(json_out(result)) == {"s1": ("done", "create")}
    with SQLiteStateBackend(url) as backend:
        assert backend.contexts() == ["dev", "prod"]


def lock_from_another_process(
    workdir: Path, url: str, context: str, host: str, linger: bool
) -> tuple[subprocess.Popen[str], str]:
    """Start a process that takes ``context``'s lock; returns it and the run id it used."""
    proc = subprocess.Popen(
        [sys.executable, "-c", LOCKER, url, context, host, "yes" if linger else "no"],
        cwd=workdir,
        env=cli_env(workdir),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    assert run_id.startswith("locker-"), proc.stderr.read() if proc.stderr else ""
    return proc, run_id


def test_stale_lock_of_a_dead_process_is_taken_over(
    tmp_path: Path, setup: tuple[Path, Path, str]
) -> None:
    first_manifest, _, url = setup
    locker, run_id = lock_from_another_process(
        tmp_path, url, "default", socket.gethostname(), linger=False
    )
    assert locker.wait(timeout=10) == 0
    proc = run_opus(tmp_path, "apply", "-f", str(first_manifest), "--state", url, "-o", "json")
    assert proc.returncode == 0, proc.stderr
    assert "taking over the lock of context 'default'" in proc.stderr
    assert f"run {run_id} (pid {locker.pid}" in proc.stderr
    assert statuses(json_out(proc)) == {"s1": ("done", "create")}
    with SQLiteStateBackend(url) as backend:
        assert backend.get_lock("default") is None


def test_lock_from_another_host_is_not_taken_over_until_unlocked(
    tmp_path: Path, setup: tuple[Path, Path, str]
) -> None:
    """A dead pid on another host proves nothing: refused until ``opus state unlock``."""
    first_manifest, _, url = setup
    locker, run_id = lock_from_another_process(
        tmp_path, url, "default", "build-box-7", linger=False
    )
    assert locker.wait(timeout=10) == 0
    proc = run_opus(tmp_path, "apply", "-f", str(first_manifest), "--state", url)
    assert proc.returncode == 4
    assert f"locked by run {run_id} (pid {locker.pid}, host build-box-7)" in proc.stderr
    unlock = run_opus(tmp_path, "state", "unlock", "--context", "default", "--state", url)
    assert unlock.returncode == 0, unlock.stderr
    assert f"unlocked context default (was held by run {run_id}" in unlock.stdout
    proc = run_opus(tmp_path, "apply", "-f", str(first_manifest), "--state", url)
    assert proc.returncode == 0, proc.stderr


def test_unlock_frees_the_lock_of_a_live_process_only_with_force(
    tmp_path: Path, setup: tuple[Path, Path, str]
) -> None:
    first_manifest, _, url = setup
    locker, run_id = lock_from_another_process(
        tmp_path, url, "default", socket.gethostname(), linger=True
    )
    try:
        proc = run_opus(tmp_path, "apply", "-f", str(first_manifest), "--state", url)
        assert proc.returncode == 4
        assert f"run {run_id} (pid {locker.pid}" in proc.stderr
        refused = run_opus(tmp_path, "state", "unlock", "-c", "default", "--state", url)
        assert refused.returncode == 2, refused.stderr
        assert "still running on this host" in refused.stderr and "--force" in refused.stderr
        with SQLiteStateBackend(url) as backend:
            assert backend.get_lock("default") is not None
        unlock = run_opus(tmp_path, "state", "unlock", "-c", "default", "--force", "--state", url)
        assert unlock.returncode == 0, unlock.stderr
        assert f"(pid {locker.pid}" in unlock.stdout
        again = run_opus(tmp_path, "state", "unlock", "-c", "default", "--state", url)
        assert again.returncode == 0 and "not locked" in again.stdout
        proc = run_opus(tmp_path, "apply", "-f", str(first_manifest), "--state", url, "-o", "json")
        assert proc.returncode == 0, proc.stderr
        assert locker.poll() is None  # it was alive all along
        assert "taking over" not in proc.stderr
    finally:
        locker.communicate(input="", timeout=10)
    runs = run_opus(tmp_path, "runs", "list", "--state", url, "-o", "json")
    assert [r["status"] for r in json.loads(runs.stdout)] == ["ok"]


def test_fresh_database_open_waits_for_a_writer(tmp_path: Path) -> None:
    """Opening state while another connection writes the fresh file waits, like any write.

    This is what two runs starting at once on a new state file do: each switches the file
    to WAL and migrates it. The switch must wait for the other (busy timeout), not fail.
    """
    path = tmp_path / "fresh.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("CREATE TABLE other_writer (x)")
    release = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
    release.start()
    try:
        with SQLiteStateBackend(f"sqlite:///{path}?timeout=10") as backend:
            assert backend.list_records("dev") == []
    finally:
        release.join()
        holder.close()
