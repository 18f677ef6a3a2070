"""PostgreSQL through the CLI: a client killed with SIGKILL loses its lock with its connection.

The server frees the advisory lock of a dead session, so the next run starts at once (no
"locked by" refusal, no takeover needed), sees every task the killed run finished as
``unchanged`` and finishes the rest.
"""

from __future__ import annotations

import signal
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
from helpers_procs import SLOW, events_of

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

CHAINS, LENGTH = 2, 8


def test_sigkilled_client_frees_its_lock_and_the_next_run_resumes(
    tmp_path: Path, pg_url: str
) -> None:
    from opus.state.postgres import PostgresStateBackend

    docs = [
        task(SLOW, f"c{c}-{i}", {"value": i, "delay": 0.05}, depends=[f"c{c}-{i - 1}"] if i else [])
        for c in range(CHAINS)
        for i in range(LENGTH)
    ]
    manifest = write_manifest(tmp_path / "chains.yaml", docs)
    first = start_opus(tmp_path, "apply", "-f", str(manifest), "--state", pg_url)
    with reaped(first):
        wait_for(
            lambda: len(events_of(tmp_path, "done")) >= 2 * CHAINS,
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
        first.communicate(timeout=10)
    assert first.returncode == -signal.SIGKILL
    finished = set(events_of(tmp_path, "done", first.pid))

    with PostgresStateBackend(pg_url) as backend:
        wait_for(
            lambda: backend.get_lock("default") is None,
            timeout=10,
            what="the server to free the dead client's lock",
        )
        assert {r.name for r in backend.list_records("default")} == finished

    (tmp_path / "hold").unlink()
    second = run_opus(tmp_path, "apply", "-f", str(manifest), "--state", pg_url, "-o", "json")
    assert second.returncode == 0, second.stderr
    assert "locked by" not in second.stderr
    result = statuses(json_out(second))
    assert {n for n, (s, _) in result.items() if s == "unchanged"} == finished
    assert {n for n, (s, a) in result.items() if (s, a) == ("done", "create")} == (
        set(result) - finished
    )
    with PostgresStateBackend(pg_url) as backend:
        assert len(backend.list_records("default")) == CHAINS * LENGTH
        assert backend.get_lock("default") is None
