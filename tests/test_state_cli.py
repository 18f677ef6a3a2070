"""``opus state list|show|history|rm|unlock|prune`` and ``opus runs list|show`` over real runs.

A module fixture makes three runs in context ``dev`` (create, update, a failure) and one in
``prod``; tests that change state work on a copy of that database.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from helpers_cli import json_out, run_opus, task, write_manifest
from helpers_procs import FAIL, SLOW

from opus.state.sqlite import SQLiteStateBackend

pytestmark = pytest.mark.slow


class History:
    """Where the recorded runs live, and their ids (oldest first)."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.db = workdir / "state.db"
        self.url = f"sqlite:///{self.db}"
        self.runs: list[str] = []

    def opus(self, *args: str) -> Any:
        return run_opus(self.dir, *args, "--state", self.url)

    def apply(self, manifest: Path, context: str, *extra: str) -> dict[str, Any]:
        proc = self.opus("apply", "-f", str(manifest), "--context", context, "-o", "json", *extra)
        report = json_out(proc)
        self.runs.append(report["run_id"])
        return report


def manifest(workdir: Path, name: str, value: str, *, failing: bool = False) -> Path:
    docs = [
        task(SLOW, "alpha", {"value": value, "delay": 0}),
        task(SLOW, "beta", {"value": "${VAR:alpha:value}!", "delay": 0}),
    ]
    if failing:
        docs.append(task(FAIL, "gamma", {"message": "quota exceeded"}, depends=["beta"]))
    return write_manifest(workdir / name, docs)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> History:
    history = History(tmp_path_factory.mktemp("state-cli"))
    v1 = manifest(history.dir, "v1.yaml", "one")
    v2 = manifest(history.dir, "v2.yaml", "two")
    broken = manifest(history.dir, "broken.yaml", "two", failing=True)
    assert history.apply(v1, "dev")["ok"]
    assert history.apply(v2, "dev")["ok"]
    assert not history.apply(broken, "dev")["ok"]
    assert history.apply(v1, "prod")["ok"]
    return history


@pytest.fixture
def copy(recorded: History, tmp_path: Path) -> History:
    """A private copy of the recorded state, for tests that change it."""
    history = History(tmp_path)
    shutil.copy(recorded.db, history.db)
    history.runs = list(recorded.runs)
    for name in ("v1.yaml", "v2.yaml"):
        shutil.copy(recorded.dir / name, tmp_path / name)
    return history


# -- state list / show / history ------------------------------------------------------------


def test_state_list(recorded: History) -> None:
    proc = recorded.opus("state", "list", "--context", "dev", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    records = json.loads(proc.stdout)
    assert [(r["name"], r["status"]) for r in records] == [
        ("alpha", "done"),
        ("beta", "done"),
        ("gamma", "failed"),
    ]
    assert records[1]["outputs"] == {"value": "two!"}
    assert records[2]["error"] and "quota exceeded" in records[2]["error"]

    text = recorded.opus("state", "list", "-c", "dev").stdout
    for name in ("alpha", "beta", "gamma", SLOW, "failed"):
        assert name in text
    prod = json.loads(recorded.opus("state", "list", "-c", "prod", "-o", "json").stdout)
    assert [r["outputs"]["value"] for r in prod] == ["one", "one!"]
    empty = recorded.opus("state", "list", "-c", "nowhere", "-o", "json")
    assert empty.returncode == 0 and json.loads(empty.stdout) == []


def test_state_show(recorded: History) -> None:
    proc = recorded.opus("state", "show", "beta", "-c", "dev", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["applied_spec"] == {"value": "two!", "delay": 0}
    assert record["run_id"] == recorded.runs[1]
    with SQLiteStateBackend(recorded.url) as backend:
        stored = backend.get("dev", "beta")
    assert stored is not None and record == json.loads(json.dumps(stored.to_dict()))

    text = recorded.opus("state", "show", "beta", "-c", "dev").stdout
    assert "spec_checksum" in text and stored.spec_checksum[:16] in text
    assert recorded.runs[1] in text


def test_state_show_unknown_task_is_a_clear_error(recorded: History) -> None:
    proc = recorded.opus("state", "show", "nope", "-c", "dev")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: no task 'nope' in the state of context 'dev'"
    proc = recorded.opus("state", "show", "alpha", "-c", "staging", "-o", "json")
    assert proc.returncode == 2
    assert json.loads(proc.stdout) == {  # -o json: stdout holds an error object
        "ok": False,
        "error": "no task 'alpha' in the state of context 'staging'",
        "exit_code": 2,
    }
    assert "no task 'alpha' in the state of context 'staging'" in proc.stderr


def test_state_history(recorded: History) -> None:
    proc = recorded.opus("state", "history", "alpha", "-c", "dev", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    entries = json.loads(proc.stdout)
    assert [(e["run_id"], e["action"], e["status"]) for e in entries] == [
        (recorded.runs[1], "update", "done"),
        (recorded.runs[0], "create", "done"),
    ]
    gamma = json.loads(recorded.opus("state", "history", "gamma", "-c", "dev", "-o", "json").stdout)
    assert [(e["action"], e["status"]) for e in gamma] == [("create", "rolled_back")]
    assert "quota exceeded" in gamma[0]["error"]
    limited = recorded.opus("state", "history", "alpha", "-c", "dev", "--limit", "1", "-o", "json")
    assert len(json.loads(limited.stdout)) == 1
    text = recorded.opus("state", "history", "alpha", "-c", "dev").stdout
    assert "update" in text and "create" in text and recorded.runs[0][:15] in text


def test_state_tables_show_values_literally(tmp_path: Path) -> None:
    """Recorded text is data: rich markup and emoji codes in it are not interpreted."""
    history = History(tmp_path)
    message = "see [bold]docs[/bold] for :a: and [red]x"
    odd = write_manifest(tmp_path / "odd.yaml", [task(FAIL, "odd", {"message": message})])
    assert not history.apply(odd, "dev")["ok"]
    for command in ("show", "history"):
        proc = history.opus("state", command, "odd", "-c", "dev")
        assert proc.returncode == 0, proc.stderr
        assert message in proc.stdout.replace("\n", ""), proc.stdout


def test_state_history_of_an_unknown_task_is_a_clear_error(recorded: History) -> None:
    proc = recorded.opus("state", "history", "nope", "-c", "dev")
    assert proc.returncode == 2
    assert "no history for task 'nope' in context 'dev'" in proc.stderr


# -- state rm / unlock / prune ------------------------------------------------------------


def test_state_rm_forgets_records_only(copy: History) -> None:
    proc = copy.opus("state", "rm", "beta", "-c", "dev")
    assert proc.returncode == 0, proc.stderr
    assert "removed beta from the state of context dev" in proc.stdout
    names = [
        r["name"] for r in json.loads(copy.opus("state", "list", "-c", "dev", "-o", "json").stdout)
    ]
    assert names == ["alpha", "gamma"]
    # prod is untouched; the next apply in dev creates beta again (state was forgotten).
    prod = json.loads(copy.opus("state", "list", "-c", "prod", "-o", "json").stdout)
    assert [r["name"] for r in prod] == ["alpha", "beta"]
    report = copy.apply(copy.dir / "v2.yaml", "dev")
    assert report["tasks"]["beta"]["action"] == "create"
    assert report["tasks"]["alpha"]["status"] == "unchanged"


def test_state_rm_unknown_task_is_a_clear_error(copy: History) -> None:
    proc = copy.opus("state", "rm", "alpha", "nope", "-c", "dev")
    assert proc.returncode == 2
    assert "removed alpha" in proc.stdout  # the known one is still removed
    assert "not in the state of context 'dev': nope" in proc.stderr
    assert copy.opus("state", "rm", "-c", "dev").returncode == 2  # no names: usage error


def test_state_unlock_when_not_locked(copy: History) -> None:
    proc = copy.opus("state", "unlock", "-c", "dev")
    assert proc.returncode == 0 and "context dev is not locked" in proc.stdout


def test_state_prune_keeps_records(copy: History) -> None:
    proc = copy.opus("state", "prune", "--keep", "1")
    assert proc.returncode == 0, proc.stderr
    assert "pruned 2 run(s)" in proc.stdout
    runs = json.loads(copy.opus("runs", "list", "-o", "json").stdout)
    assert sorted(r["run_id"] for r in runs) == sorted([copy.runs[2], copy.runs[3]])
    dev = json.loads(copy.opus("state", "list", "-c", "dev", "-o", "json").stdout)
    assert [r["name"] for r in dev] == ["alpha", "beta", "gamma"]
    # The history of pruned runs is gone; that of the kept run stays.
    alpha = json.loads(copy.opus("state", "history", "gamma", "-c", "dev", "-o", "json").stdout)
    assert [e["run_id"] for e in alpha] == [copy.runs[2]]
    again = copy.opus("state", "prune", "--keep", "1")
    assert "pruned 0 run(s)" in again.stdout
    assert copy.opus("state", "prune", "--keep", "-1").returncode == 2


# -- runs list / show ----------------------------------------------------------------------


def test_runs_list(recorded: History) -> None:
    proc = recorded.opus("runs", "list", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    runs = json.loads(proc.stdout)
    assert [r["run_id"] for r in runs] == recorded.runs[::-1]  # newest first
    assert [r["status"] for r in runs] == ["ok", "failed", "ok", "ok"]
    assert runs[1]["summary"] == {"done": 2, "rolled_back": 1} or runs[1]["summary"] == {
        "unchanged": 2,
        "rolled_back": 1,
    }
    dev = json.loads(
        recorded.opus("runs", "list", "-c", "dev", "--limit", "2", "-o", "json").stdout
    )
    assert [r["run_id"] for r in dev] == [recorded.runs[2], recorded.runs[1]]
    text = recorded.opus("runs", "list").stdout
    assert "failed" in text and "prod" in text and "apply" in text


def test_runs_show(recorded: History) -> None:
    proc = recorded.opus("runs", "show", recorded.runs[1], "-o", "json")
    assert proc.returncode == 0, proc.stderr
    run = json.loads(proc.stdout)
    assert (run["run_id"], run["context"], run["command"], run["status"]) == (
        recorded.runs[1],
        "dev",
        "apply",
        "ok",
    )
    assert [(e["name"], e["action"]) for e in run["entries"]] == [
        ("alpha", "update"),
        ("beta", "update"),
    ]
    text = recorded.opus("runs", "show", recorded.runs[1])
    assert text.returncode == 0
    assert f"run {recorded.runs[1]}: apply in context dev, ok" in text.stdout
    assert "alpha" in text.stdout and "update" in text.stdout
    # A failed run is shown, and the exit code says it failed.
    failed = recorded.opus("runs", "show", recorded.runs[2])
    assert failed.returncode == 1
    assert "quota exceeded" in failed.stdout


def test_runs_show_by_unique_prefix(recorded: History) -> None:
    run_id = recorded.runs[3]
    proc = recorded.opus("runs", "show", run_id[:-2], "-o", "json")
    if sum(r.startswith(run_id[:-2]) for r in recorded.runs) > 1:
        pytest.skip("two run ids share all but their last two characters")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["run_id"] == run_id


def test_runs_show_unknown_and_ambiguous(recorded: History) -> None:
    proc = recorded.opus("runs", "show", "19990101T000000-abcdef")
    assert proc.returncode == 2
    assert "no run '19990101T000000-abcdef'" in proc.stderr
    prefix = recorded.runs[0][:4]  # the year: shared by every run
    proc = recorded.opus("runs", "show", prefix)
    assert proc.returncode == 2
    assert f"run id prefix {prefix!r} is ambiguous" in proc.stderr
    assert recorded.runs[0] in proc.stderr and recorded.runs[3] in proc.stderr
