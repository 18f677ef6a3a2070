"""What only the PostgreSQL backend does: URLs, schema, advisory locks, server failures.

The server tests need ``OPUS_TEST_POSTGRES_URL``; the restart tests also need
``OPUS_TEST_PG_CTL`` and ``OPUS_TEST_PGDATA`` to control that server (all three are printed
by ``scripts/postgres-for-tests.sh``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from opus.errors import LockError, StateError
from opus.model import LockInfo, TaskState
from opus.state.postgres import PostgresStateBackend, advisory_key, parse_postgres_url

pytestmark = pytest.mark.postgres

HOST = socket.gethostname()

HOLDER = """
    import sys, time
    from opus.model import LockInfo
    from opus.state.postgres import PostgresStateBackend
    backend = PostgresStateBackend(sys.argv[1])
    # a host name no takeover logic can match: only the server can free this lock
    assert backend.try_lock(LockInfo("dev", "doomed", 999999, "far-away", time.time())) is None
    print("locked", flush=True)
    time.sleep(600)
"""


def info(run_id: str, host: str = HOST) -> LockInfo:
    return LockInfo("dev", run_id, os.getpid(), host, 1700000000.0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- without a server ---------------------------------------------------------------------------


def test_url_forms() -> None:
    conninfo, schema, where = parse_postgres_url(
        "postgres://u:pw@db.example:6543/state?schema=team_a"
    )
    assert (schema, where) == ("team_a", "db.example:6543")
    assert conninfo == "postgresql://u:pw@db.example:6543/state"
    conninfo, schema, where = parse_postgres_url(
        "postgresql://u@h/db?sslmode=require&connect_timeout=3"
    )
    assert (schema, where) == ("opus", "h:5432")
    assert conninfo == "postgresql://u@h/db?sslmode=require&connect_timeout=3"


@pytest.mark.parametrize(
    "url, message",
    [
        ("mysql://u@h/db", "expected 'postgresql://"),
        ("postgresql:db", "expected 'postgresql://"),
        ("postgresql://u@h/db?schema=Bad-Name", "must be a lower-case SQL identifier"),
        ("postgresql://u@h/db?schema=x;drop", "must be a lower-case SQL identifier"),
        ("postgresql://u@h:notaport/db", "Port could not be cast"),
    ],
)
def test_bad_url_is_a_clear_state_error(url: str, message: str) -> None:
    with pytest.raises(StateError, match="invalid PostgreSQL state URL") as raised:
        PostgresStateBackend(url)
    assert message in str(raised.value)


def test_the_password_never_shows() -> None:
    port = free_port()
    backend = PostgresStateBackend(f"postgresql://me:s3cret@127.0.0.1:{port}/db")
    assert "s3cret" not in repr(backend) and ":***@" in repr(backend)
    with pytest.raises(StateError) as raised:
        PostgresStateBackend("postgresql://me:s3cret@h/db?schema=BAD")
    assert "s3cret" not in str(raised.value)


def test_unreachable_server_is_a_clear_state_error() -> None:
    port = free_port()
    backend = PostgresStateBackend(f"postgresql://me:s3cret@127.0.0.1:{port}/db")
    with pytest.raises(
        StateError, match=rf"cannot connect to PostgreSQL at 127\.0\.0\.1:{port}: "
    ) as e:
        backend.get("dev", "web")
    assert "s3cret" not in str(e.value)


def test_missing_psycopg_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg -> ImportError
    backend = PostgresStateBackend("postgresql://u@127.0.0.1/db")  # constructing needs no driver
    with pytest.raises(StateError, match=r"install opus\[postgres\]"):
        backend.list_records("dev")


def test_advisory_key_is_stable_and_per_schema() -> None:
    # a changed derivation would let an old and a new opus run on one context at once
    assert advisory_key("opus", "prod") == advisory_key("opus", "prod")
    assert advisory_key("opus", "prod") != advisory_key("other", "prod")
    assert -(2**63) <= advisory_key("opus", "dev") < 2**63
    assert advisory_key("opus", "dev") == -4008222907348160231


# -- with a server --------------------------------------------------------------------------------


def _admin_fetch(sql: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(os.environ["OPUS_TEST_POSTGRES_URL"], autocommit=True) as conn:
        return conn.execute(sql).fetchall()


def test_schema_is_created_and_migrations_recorded(pg_url: str) -> None:
    schema = pg_url.rsplit("schema=", 1)[1]
    for _ in range(2):
        with PostgresStateBackend(pg_url) as backend:
            backend.save(TaskState("dev", "web"))
            assert backend.schema_version == 2
    rows = _admin_fetch(f"SELECT version, name FROM {schema}.schema_migrations ORDER BY version")
    assert [v for v, _ in rows] == [1, 2]
    tables = {r[0] for r in _admin_fetch(
        f"SELECT tablename FROM pg_tables WHERE schemaname = '{schema}'"
    )}  # fmt: skip
    assert tables == {"schema_migrations", "tasks", "history", "runs", "locks"}


def test_a_schema_from_a_newer_opus_is_refused(pg_url: str) -> None:
    schema = pg_url.rsplit("schema=", 1)[1]
    with PostgresStateBackend(pg_url) as backend:
        backend.contexts()
    _admin_fetch(f"INSERT INTO {schema}.schema_migrations VALUES (7, 'future', 0) RETURNING 1")
    with pytest.raises(
        StateError, match=r"schema version 7, but this opus only knows versions up to 2"
    ):
        PostgresStateBackend(pg_url).contexts()


def test_a_killed_holder_s_lock_is_freed_by_the_server(pg_url: str, children) -> None:
    holder = children(HOLDER, pg_url)
    assert holder.readline() == "locked"
    backend = PostgresStateBackend(pg_url)
    assert backend.get_lock("dev").run_id == "doomed"  # type: ignore[union-attr]
    with pytest.raises(LockError, match=r"locked by run doomed \(pid 999999, host far-away\)"):
        backend.acquire_lock(info("mine"))
    holder.kill()
    deadline = time.monotonic() + 10
    while backend.get_lock("dev") is not None:  # the row is still there, but stale
        assert time.monotonic() < deadline, "the server did not free the dead client's lock"
        time.sleep(0.05)
    backend.acquire_lock(info("mine"))
    assert backend.get_lock("dev") == info("mine")
    backend.close()


# -- server failures ------------------------------------------------------------------------------


class Server:
    """Controls the test server through pg_ctl (as the data directory's owner)."""

    def __init__(self, pg_ctl: str, pgdata: str) -> None:
        # -l: the server must not inherit our pipes, or waiting for pg_ctl never ends
        log = os.path.join(pgdata, "server.log")
        self.command = [pg_ctl, "-D", pgdata, "-l", log, "-w", "-t", "60"]
        self.prefix: list[str] = []
        owner = os.stat(pgdata).st_uid
        if os.geteuid() == 0 and owner != 0:
            import pwd

            self.prefix = ["runuser", "-u", pwd.getpwuid(owner).pw_name, "--"]

    def __call__(self, *args: str) -> None:
        subprocess.run(
            [*self.prefix, *self.command, *args], check=True, capture_output=True, timeout=120
        )

    def running(self) -> bool:
        return (
            subprocess.run([*self.prefix, *self.command, "status"], capture_output=True).returncode
            == 0
        )


@pytest.fixture
def server(pg_url: str) -> Iterator[Server]:
    pg_ctl, pgdata = os.environ.get("OPUS_TEST_PG_CTL"), os.environ.get("OPUS_TEST_PGDATA")
    if not pg_ctl or not pgdata or not os.path.isdir(pgdata):
        pytest.skip("cannot control the test server: OPUS_TEST_PG_CTL / OPUS_TEST_PGDATA unset")
    control = Server(pg_ctl, pgdata)
    if not control.running():
        pytest.skip(f"the test server in {pgdata} is not controlled by {pg_ctl}")
    yield control
    if not control.running():
        control("start")


def test_server_restart_mid_run_loses_nothing_and_stops_the_run(
    pg_url: str, server: Server
) -> None:
    backend = PostgresStateBackend(pg_url)
    backend.acquire_lock(info("run-1"))
    for i in range(3):
        backend.save(TaskState("dev", f"t{i}", outputs={"i": i}))
    server("restart", "-m", "fast")
    # the advisory lock died with the old server: writing on would risk two writers
    with pytest.raises(LockError, match="lost the lock of context 'dev' held by run run-1"):
        backend.save(TaskState("dev", "t3"))
    assert [s.name for s in backend.list_records("dev")] == ["t0", "t1", "t2"]  # reads reconnect
    other = PostgresStateBackend(pg_url)
    assert [s.outputs for s in other.list_records("dev")] == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert other.get_lock("dev") is None  # the record left behind is stale
    other.acquire_lock(info("run-2"))
    other.close()
    backend.close()


def test_server_gone_is_a_clean_state_error_and_later_calls_reconnect(
    pg_url: str, server: Server
) -> None:
    backend = PostgresStateBackend(pg_url)
    backend.save(TaskState("dev", "before"))
    where = pg_url.split("@", 1)[1].split("/", 1)[0]
    server("stop", "-m", "fast")
    try:
        with pytest.raises(StateError, match=rf"lost connection to PostgreSQL at {where}: "):
            backend.save(TaskState("dev", "during"))
        with pytest.raises(StateError, match=rf"lost connection to PostgreSQL at {where}: "):
            backend.get("dev", "before")
    finally:
        server("start")
    backend.save(TaskState("dev", "after"))  # the same client carries on once it is back
    assert [s.name for s in backend.list_records("dev")] == ["after", "before"]
    backend.close()
