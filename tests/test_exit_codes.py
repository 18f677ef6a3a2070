"""Exit codes through the real CLI: 2 for bad input, 4 when opus could not do its job.

Also: core errors name the library's arguments (``variables=``, ``lock_timeout=``) and the CLI
shows its flags instead (``--var``, ``--lock-timeout``).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from pathlib import Path

import pytest
from helpers_cli import run_opus, task, write_manifest
from helpers_procs import SLOW
from support_processors import RecordingProcessor, make_task

from opus import Engine, GraphError, LockError, VariableError
from opus.cli.errors import ExitCode
from opus.model import LockInfo
from opus.state._sql import LATEST_VERSION
from opus.state.sqlite import SQLiteStateBackend


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    return write_manifest(tmp_path / "tasks.yaml", [task(SLOW, "s1", {"value": 1})])


def lock_from_elsewhere(url: str, context: str = "default") -> LockInfo:
    """Hold ``context``'s lock as a run on another host (never taken over)."""
    info = LockInfo(context, "elsewhere-1", os.getpid(), "build-box-7", time.time())
    with SQLiteStateBackend(url) as backend:
        assert backend.try_lock(info) is None
    return info


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_exit_codes_are_documented_values() -> None:
    assert [(c.name, int(c)) for c in ExitCode] == [
        ("OK", 0),
        ("FAILED", 1),
        ("USAGE", 2),
        ("CHANGES", 3),
        ("UNAVAILABLE", 4),
        ("INTERRUPTED", 130),
    ]
    text = (Path(__file__).resolve().parent.parent / "docs" / "cli.md").read_text()
    table = text[text.index("## Exit codes") :]
    for code in ExitCode:
        assert f"| {int(code)} |" in table, code


# -- 4: opus could not do its job -------------------------------------------------------------


def test_a_locked_context_exits_4_naming_the_flag(tmp_path: Path, manifest: Path) -> None:
    url = f"sqlite:///{tmp_path}/state.db"
    lock_from_elsewhere(url)
    proc = run_opus(tmp_path, "apply", "-f", str(manifest), "--state", url)
    assert proc.returncode == ExitCode.UNAVAILABLE == 4, proc.stderr
    assert proc.stderr.strip() == (
        "error: context 'default' is locked by run elsewhere-1 "
        f"(pid {os.getpid()}, host build-box-7) since "
        f"{proc.stderr.split(' since ')[1].split(';')[0]}; use --lock-timeout to wait, "
        "or 'opus state unlock --context default' if that run is gone"
    )


def test_a_locked_context_in_ndjson_reports_exit_4(tmp_path: Path, manifest: Path) -> None:
    url = f"sqlite:///{tmp_path}/state.db"
    lock_from_elsewhere(url)
    proc = run_opus(tmp_path, "apply", "-f", str(manifest), "--state", url, "-o", "ndjson")
    assert proc.returncode == 4
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    error = [e for e in events if e["event"] == "error"]
    assert len(error) == 1 and error[0]["exit_code"] == 4
    assert "--lock-timeout" in error[0]["message"]


def test_the_library_lock_error_names_the_argument_not_the_flag(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/state.db"
    lock_from_elsewhere(url, "dev")
    with Engine(state=url, entry_points=False, lock_timeout=0) as engine:
        engine.register_processor(RecordingProcessor())
        with pytest.raises(LockError) as caught:
            engine.run("apply", [make_task("a")], context="dev")
    message = str(caught.value)
    assert "locked by run elsewhere-1" in message and "lock_timeout=" in message
    assert "--" not in message and "opus state" not in message
    assert caught.value.context == "dev" and caught.value.argument == "lock_timeout"


def test_an_unreachable_dask_scheduler_exits_4(tmp_path: Path, manifest: Path) -> None:
    pytest.importorskip("distributed", reason="the dask executor needs opus[dask]")
    address = f"dask://127.0.0.1:{free_port()}"  # nothing listens there
    proc = run_opus(tmp_path, "apply", "-f", str(manifest), "--executor", address)
    assert proc.returncode == 4, proc.stderr
    assert "cannot connect to the Dask scheduler at tcp://127.0.0.1:" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_corrupt_state_database_exits_4(tmp_path: Path, manifest: Path) -> None:
    (tmp_path / "state.db").write_bytes(b"this is not a SQLite database, " * 200)
    url = f"sqlite:///{tmp_path}/state.db"
    for args in (("apply", "-f", str(manifest)), ("state", "list")):
        proc = run_opus(tmp_path, *args, "--state", url)
        assert proc.returncode == 4, (args, proc.stderr)
        assert proc.stderr.startswith("error: ") and "state.db" in proc.stderr
        assert "Traceback" not in proc.stderr


def test_a_state_database_of_a_newer_opus_exits_4(tmp_path: Path, manifest: Path) -> None:
    url = f"sqlite:///{tmp_path}/state.db"
    with SQLiteStateBackend(url) as backend:
        backend.contexts()  # creates the schema
    with sqlite3.connect(tmp_path / "state.db") as db:
        db.execute(
            "INSERT INTO schema_migrations VALUES (?, 'from the future', 0)",
            (LATEST_VERSION + 1,),
        )
    db.close()
    proc = run_opus(tmp_path, "apply", "-f", str(manifest), "--state", url)
    assert proc.returncode == 4, proc.stderr
    assert f"has schema version {LATEST_VERSION + 1}" in proc.stderr
    assert "upgrade opus" in proc.stderr


def test_an_unreachable_postgresql_server_exits_4(tmp_path: Path, manifest: Path) -> None:
    pytest.importorskip("psycopg", reason="the PostgreSQL backend needs opus[postgres]")
    url = f"postgresql://opus@127.0.0.1:{free_port()}/opus"  # nothing listens there
    proc = run_opus(tmp_path, "apply", "-f", str(manifest), "--state", url)
    assert proc.returncode == 4, proc.stderr
    assert "cannot connect to PostgreSQL at 127.0.0.1:" in proc.stderr
    assert "Traceback" not in proc.stderr


# -- 2: bad input, even when it concerns state or the executor ---------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--state", "sqlite://"), "invalid SQLite state URL 'sqlite://'"),
        (("--state", "nosuch://x"), "no state backend for 'nosuch://x'"),
        (("--state", "state.db"), "invalid state URL 'state.db'"),
        (("--executor", "kubernetes"), "unknown executor 'kubernetes'"),
        (("--executor", "dask://host:port"), "invalid Dask scheduler address"),
    ],
)
def test_a_malformed_state_url_or_executor_exits_2(
    tmp_path: Path, manifest: Path, args: tuple[str, ...], message: str
) -> None:
    proc = run_opus(tmp_path, "apply", "-f", str(manifest), *args)
    assert proc.returncode == ExitCode.USAGE == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_an_unknown_task_in_state_exits_2(tmp_path: Path) -> None:
    with SQLiteStateBackend(f"sqlite:///{tmp_path}/s.db") as backend:  # state exists, empty
        backend.list_records("default")
    proc = run_opus(tmp_path, "state", "show", "ghost", "--state", f"sqlite:///{tmp_path}/s.db")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: no task 'ghost' in the state of context 'default'"


def test_no_state_at_all_exits_2_and_creates_none(tmp_path: Path) -> None:
    proc = run_opus(tmp_path, "state", "show", "ghost", "--state", f"sqlite:///{tmp_path}/s.db")
    assert proc.returncode == 2
    assert "no state found at sqlite:///" in proc.stderr
    assert not (tmp_path / "s.db").exists()


# -- flags in the CLI, arguments in the library ---------------------------------------------


def test_an_undefined_variable_names_flags_in_the_cli(tmp_path: Path) -> None:
    path = write_manifest(tmp_path / "t.yaml", [task(SLOW, "s1", {"value": "${VAR:region}"})])
    for command in ("apply", "validate"):
        proc = run_opus(tmp_path, command, "-f", str(path))
        assert proc.returncode == 2, proc.stderr
        assert "variable 'region' is not defined (set it with --var or --values)" in proc.stderr
        assert "variables=" not in proc.stderr
    proc = run_opus(tmp_path, "validate", "-f", str(path), "-o", "json")
    problems = json.loads(proc.stdout)["problems"]
    assert len(problems) == 1 and "(set it with --var or --values)" in problems[0]


def test_an_undefined_variable_names_the_argument_in_the_library(engine: Engine) -> None:
    with pytest.raises(VariableError) as caught:
        engine.run("apply", [make_task("a", spec={"r": "${VAR:region}"})], context="dev")
    message = str(caught.value)
    assert "variable 'region' is not defined (set it with variables=)" in message
    assert "--" not in message


def test_an_unknown_target_names_the_flag_in_the_cli(tmp_path: Path, manifest: Path) -> None:
    for flag in ("--target", "--exclude"):
        proc = run_opus(tmp_path, "apply", "-f", str(manifest), flag, "ghost")
        assert proc.returncode == 2
        assert proc.stderr.strip() == f"error: {flag}: no task named 'ghost' in this run"


def test_an_unknown_target_names_the_argument_in_the_library(engine: Engine) -> None:
    with pytest.raises(GraphError) as caught:
        engine.run("apply", [make_task("a")], context="dev", excludes=["ghost"])
    assert str(caught.value) == "excludes=: no task named 'ghost' in this run"


def test_a_malformed_var_names_the_flag(tmp_path: Path, manifest: Path) -> None:
    proc = run_opus(tmp_path, "apply", "-f", str(manifest), "--var", "novalue")
    assert proc.returncode == 2
    assert "'novalue' in --var: expected NAME=VALUE" in proc.stderr


def test_a_malformed_var_leaves_the_good_ones_defined(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(
        "apiVersion: hello-world/v1\nkind: HelloWorld\nmetadata: {name: h}\n"
        "spec: {path: out/h.txt, content: '${VAR:name} x ${VAR:replicas}'}\n"
    )
    proc = run_opus(
        tmp_path, "plan", "-f", "t.yaml", "--var", "name=x", "--var", "replicas=2",
        "--var", "foo", plugins=(),
    )  # fmt: skip
    assert proc.returncode == 2
    assert "'foo' in --var: expected NAME=VALUE" in proc.stderr
    assert "not defined" not in proc.stderr, proc.stderr


def test_a_variable_missing_because_a_values_file_is_broken_says_so(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(
        "apiVersion: hello-world/v1\nkind: HelloWorld\nmetadata: {name: h}\n"
        "spec: {path: out/h.txt, content: '${VAR:greeting}'}\n"
    )
    (tmp_path / "values.yaml").write_text("greeting: [unclosed\n")
    proc = run_opus(tmp_path, "plan", "-f", "t.yaml", "--values", "values.yaml", plugins=())
    assert proc.returncode == 2
    assert "values.yaml:2: invalid YAML" in proc.stderr
    assert (
        "variable 'greeting' is not defined (set it with --var or --values) (reference "
        "${VAR:greeting}); it may be in values.yaml, which could not be read"
    ) in proc.stderr
    fine = run_opus(tmp_path, "plan", "-f", "t.yaml", "--var", "greeting=hi", plugins=())
    assert fine.returncode == 3 and "could not be read" not in fine.stderr
    # a malformed --var names only the variable it was meant to set
    other = run_opus(tmp_path, "plan", "-f", "t.yaml", "--var", "other", plugins=())
    assert other.returncode == 2 and "could not be read" not in other.stderr, other.stderr
    for pair in ("greeting", "greeting:hi", "greeting hi"):
        meant = run_opus(tmp_path, "plan", "-f", "t.yaml", "--var", pair, plugins=())
        assert "it may be in --var greeting, which could not be read" in meant.stderr, pair
