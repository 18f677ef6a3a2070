"""Fixtures for the state backend tests: a PostgreSQL schema per test, and child processes.

The PostgreSQL kind needs ``OPUS_TEST_POSTGRES_URL`` (see ``scripts/postgres-for-tests.sh``);
every test gets its own schema, dropped afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator

import pytest

from opus.testing.state_contract import Child, child_processes

PG_URL = os.environ.get("OPUS_TEST_POSTGRES_URL", "")
NO_PG = 'OPUS_TEST_POSTGRES_URL is not set (eval "$(bash scripts/postgres-for-tests.sh)")'


def pg_admin_execute(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(sql)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A URL of the test server with a fresh schema of its own."""
    if not PG_URL:
        pytest.skip(NO_PG)
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'opus[postgres]')")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}schema={schema}"
    try:
        pg_admin_execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    except Exception as exc:  # the server may be mid-restart after a failed test
        print(f"could not drop schema {schema}: {exc}")


@pytest.fixture
def children() -> Iterator[Callable[..., Child]]:
    """Start :class:`Child` processes; any still running at teardown are killed."""
    yield from child_processes()


@pytest.fixture
def dead_pid() -> int:
    """The pid of a process that has just exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid
