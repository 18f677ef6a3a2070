"""Files that may hold secrets are private; file/v1 parent directories are race-free
(issue 12, items 3 and 4)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from opus import Engine, TaskState
from opus.fsutil import make_private_dirs, write_private
from opus.state.sqlite import SQLiteStateBackend

# the package loads its modules lazily: ask for the backup module itself
backup = pytest.importorskip("opus_file.backup", reason="needs the opus-file plugin installed")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def opus(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opus", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: os.umask(0o022),
    )


def file_task(name: str, path: str, content: str = "x") -> dict:
    return {
        "apiVersion": "file/v1",
        "kind": "File",
        "metadata": {"name": name},
        "spec": {"path": path, "content": content},
    }


# -- item 3: modes ------------------------------------------------------------------------


def test_cli_creates_the_state_directory_0700_and_database_0600(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(file_task("f", "out.txt")))
    done = opus(tmp_path, "apply", "-f", "t.yaml")
    assert done.returncode == 0, done.stderr
    assert mode(tmp_path / ".opus") == 0o700
    assert mode(tmp_path / ".opus" / "state.db") == 0o600


def test_wal_and_shm_files_are_0600_too(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        with SQLiteStateBackend(f"sqlite:///{tmp_path}/deep/er/state.db") as backend:
            backend.save(TaskState("dev", "web", outputs={"token": "s3cr3t"}))
            files = sorted(p.name for p in (tmp_path / "deep" / "er").iterdir())
            assert files == ["state.db", "state.db-shm", "state.db-wal"]
            for name in files:
                assert mode(tmp_path / "deep" / "er" / name) == 0o600, name
        assert mode(tmp_path / "deep") == 0o700 and mode(tmp_path / "deep" / "er") == 0o700
    finally:
        os.umask(old)


def test_an_existing_directory_keeps_its_mode(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir(mode=0o755)
    os.chmod(tmp_path / "shared", 0o755)
    with SQLiteStateBackend(f"sqlite:///{tmp_path}/shared/state.db") as backend:
        backend.save(TaskState("dev", "web"))
    assert mode(tmp_path / "shared") == 0o755
    assert mode(tmp_path / "shared" / "state.db") == 0o600


def test_write_private(tmp_path: Path) -> None:
    target = write_private(tmp_path / "plans" / "p.json", '{"a": 1}')
    assert target.read_text() == '{"a": 1}' and mode(target) == 0o600
    assert mode(tmp_path / "plans") == 0o700
    target.chmod(0o644)
    write_private(target, b"new")  # replacing a file makes it private again
    assert target.read_bytes() == b"new" and mode(target) == 0o600
    assert [p.name for p in (tmp_path / "plans").iterdir()] == ["p.json"]
    assert make_private_dirs(tmp_path / "plans") == tmp_path / "plans"


def test_write_private_never_takes_over_an_existing_temp_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = iter([b"\0" * 6, b"\0" * 6, b"\1" * 6])  # the first name twice, then another
    monkeypatch.setattr(os, "urandom", lambda n: next(names))
    (tmp_path / "elsewhere").write_text("someone else's")
    taken = tmp_path / f".p.json.{'00' * 6}.tmp"
    taken.symlink_to(tmp_path / "elsewhere")  # planted where the temp file would go
    write_private(tmp_path / "p.json", "mine")
    assert taken.is_symlink() and (tmp_path / "elsewhere").read_text() == "someone else's"
    assert (tmp_path / "p.json").read_text() == "mine" and mode(tmp_path / "p.json") == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [taken.name, "elsewhere", "p.json"]


def test_file_backups_are_0600_in_0700_directories(tmp_path: Path) -> None:
    secret = tmp_path / "secret.env"
    secret.write_text("TOKEN=abc")
    secret.chmod(0o600)
    store = backup.BackupStore(tmp_path / ".opus" / "backups" / "file")
    where = store.take("dev", "env", "run-1", [secret])
    for directory in [tmp_path / ".opus", *[p for p in where.parents if tmp_path in p.parents]]:
        assert mode(directory) == 0o700, directory
    assert mode(where) == 0o700
    for saved in where.iterdir():
        assert mode(saved) == 0o600, saved
    assert (where / "0.bin").read_text() == "TOKEN=abc"


def test_a_backup_left_by_a_killed_run_is_removed_by_the_next_run(tmp_path: Path) -> None:
    """What ``kill -9`` during a file action leaves: a backup of a run that never ended."""
    (tmp_path / "secret.env").write_text("TOKEN=abc")
    store = backup.BackupStore(tmp_path / ".opus" / "backups" / "file")
    left = store.take("dev", "env", "20260101T000000-dead00", [tmp_path / "secret.env"])
    other_context = store.take("prod", "env", "20260101T000000-dead01", [tmp_path / "secret.env"])
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(file_task("other", "other.txt")))
    done = opus(tmp_path, "apply", "-f", "t.yaml", "--context", "dev")
    assert done.returncode == 0, done.stderr
    assert not left.exists() and not left.parent.exists()
    assert "stale file/v1 backup" in done.stderr
    assert other_context.exists(), "another context's backups are not this run's business"


# -- item 4: parent directory race --------------------------------------------------------


@pytest.mark.parametrize("attempt", range(5))
def test_many_tasks_creating_one_new_directory_at_once(
    tmp_path: Path, attempt: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # backups go to ./.opus
    tasks = [
        file_task(f"f{i}", str(tmp_path / "out" / "deep" / f"{i}.txt"), str(i)) for i in range(30)
    ]
    engine = Engine(state="memory://", parallelism=30)
    result = engine.run("apply", tasks, context="dev")
    errors = {n: o.error for n, o in result.tasks.items() if o.status != "done"}
    assert errors == {}
    assert sorted(p.name for p in (tmp_path / "out" / "deep").iterdir()) == sorted(
        f"{i}.txt" for i in range(30)
    )
    engine.close()


def test_rollback_removes_only_directories_the_task_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One task fails and rolls back; the shared new directory stays for the others."""
    monkeypatch.chdir(tmp_path)
    good = [file_task(f"g{i}", str(tmp_path / "out" / f"{i}.txt")) for i in range(10)]
    bad = file_task("bad", str(tmp_path / "out" / "sub"))
    (tmp_path / "out" / "sub").mkdir(parents=True)  # a directory where a file should go
    engine = Engine(state="memory://", parallelism=11)
    result = engine.run("apply", [*good, bad], context="dev", keep_going=True)
    assert result.tasks["bad"].status == "rolled_back"
    assert all(result.tasks[f"g{i}"].status == "done" for i in range(10))
    assert len(list((tmp_path / "out").glob("*.txt"))) == 10
    engine.close()


def test_cli_parallel_file_tasks_into_a_new_directory(tmp_path: Path) -> None:
    docs = [file_task(f"f{i}", f"out/new/{i}.txt", str(i)) for i in range(20)]
    (tmp_path / "t.yaml").write_text(yaml.safe_dump_all(docs))
    for _ in range(3):
        done = opus(
            tmp_path,
            "apply",
            "-f",
            "t.yaml",
            "--parallelism",
            "20",
            "-o",
            "json",
            "--state",
            "memory://",
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert {t["status"] for t in json.loads(done.stdout)["tasks"].values()} == {"done"}
        subprocess.run(["rm", "-rf", str(tmp_path / "out")], check=True)


def test_an_unquoted_decimal_mode_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    # YAML reads `mode: 644` as the decimal number 644, which is 0o1204 (sticky, -w----r--)
    (tmp_path / "m.yaml").write_text(
        "apiVersion: file/v1\nkind: File\nmetadata: {name: f}\n"
        "spec: {path: out.txt, content: x, mode: 644}\n"
    )
    state = f"sqlite:///{tmp_path / 'state.db'}"
    done = opus(tmp_path, "apply", "-f", "m.yaml", "--state", state)
    assert done.returncode == 2, done.stderr
    assert "m.yaml:4" in done.stderr and "spec.mode" in done.stderr
    assert "quoted" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out.txt").exists()


@pytest.mark.parametrize(
    ("written", "expected"), [("'644'", 0o644), ("0644", 0o644), ("0o600", 0o600)]
)
def test_octal_modes_as_yaml_writes_them(tmp_path: Path, written: str, expected: int) -> None:
    (tmp_path / "m.yaml").write_text(
        "apiVersion: file/v1\nkind: File\nmetadata: {name: f}\n"
        f"spec: {{path: out.txt, content: x, mode: {written}}}\n"
    )
    done = opus(tmp_path, "apply", "-f", "m.yaml", "--state", f"sqlite:///{tmp_path / 's.db'}")
    assert done.returncode == 0, done.stderr
    assert mode(tmp_path / "out.txt") == expected
