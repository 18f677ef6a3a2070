"""Tests of the file/v1 processor against real files in a temp directory."""

from __future__ import annotations

import importlib.metadata
import os
import stat
from pathlib import Path

import opus_file
import pluggy
import pytest
from opus_file import FileProcessor, render
from opus_file.template import TemplateError

from opus import OpusError, Result, Task, TaskContext, TaskState
from opus.testing import task_context


@pytest.fixture
def proc(tmp_path: Path) -> FileProcessor:
    return FileProcessor(backup_dir=tmp_path / "backups")


def make(name: str, spec: dict, kind: str = "File") -> Task:
    return Task(api_version="file/v1", kind=kind, metadata={"name": name}, spec=spec)


def ctx_for(
    task: Task, action: str, state: TaskState | None = None, run_id: str = "r1", **kw
) -> TaskContext:
    return task_context(task, action, state=state, context="dev", run_id=run_id, **kw)


def state_from(task: Task, result: Result) -> TaskState:
    return TaskState(
        context="dev",
        name=task.name,
        applied_spec=dict(task.spec),
        outputs=dict(result.outputs),
        resource_checksum=result.resource_checksum,
    )


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- create / update / delete -------------------------------------------------------------


def test_create_writes_content_and_mode(proc: FileProcessor, tmp_path: Path) -> None:
    target = tmp_path / "etc" / "app.conf"
    task = make("conf", {"path": str(target), "content": "port=80\n", "mode": "0640"})
    result = proc.create(task, ctx_for(task, "create"))
    assert target.read_text() == "port=80\n"
    assert mode_of(target) == 0o640
    out = result.outputs
    assert out["path"] == str(target)
    assert out["mode"] == "0640"
    assert out["size"] == 8
    import hashlib

    assert out["sha256"] == hashlib.sha256(b"port=80\n").hexdigest()
    assert result.resource_checksum
    assert not (tmp_path / "backups" / "dev").exists(), "a successful action leaves no backup"


def test_relative_path_is_relative_to_cwd(proc, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    task = make("rel", {"path": "out/x.txt", "content": "x"})
    result = proc.create(task, ctx_for(task, "create"))
    assert (tmp_path / "out" / "x.txt").read_text() == "x"
    assert result.outputs["path"] == str(tmp_path / "out" / "x.txt")


def test_mode_forms(proc, tmp_path) -> None:
    for i, mode in enumerate(["644", "0o600", 0o751]):
        target = tmp_path / f"m{i}"
        task = make(f"m{i}", {"path": str(target), "mode": mode})
        proc.create(task, ctx_for(task, "create"))
        assert mode_of(target) == [0o644, 0o600, 0o751][i]
    for bad in ["0999", "rw-r--r--", True, 0o17777]:
        task = make("bad", {"path": str(tmp_path / "bad"), "mode": bad})
        with pytest.raises(OpusError, match="spec.mode"):
            proc.create(task, ctx_for(task, "create"))
    assert not (tmp_path / "bad").exists()


def test_default_mode_follows_umask_and_update_keeps_existing_mode(proc, tmp_path) -> None:
    target = tmp_path / "f"
    old = os.umask(0o027)
    try:
        task = make("f", {"path": str(target), "content": "a"})
        proc.create(task, ctx_for(task, "create"))
    finally:
        os.umask(old)
    assert mode_of(target) == 0o640
    os.chmod(target, 0o600)
    task = make("f", {"path": str(target), "content": "b"})
    proc.update(task, ctx_for(task, "update"))
    assert target.read_text() == "b" and mode_of(target) == 0o600


def test_update_without_change_does_not_rewrite(proc, tmp_path) -> None:
    target = tmp_path / "same"
    task = make("same", {"path": str(target), "content": "v1", "mode": "0644"})
    proc.create(task, ctx_for(task, "create"))
    inode = target.stat().st_ino
    proc.update(task, ctx_for(task, "update"))
    assert target.stat().st_ino == inode
    changed = make("same", {"path": str(target), "content": "v2", "mode": "0644"})
    proc.update(changed, ctx_for(changed, "update"))
    assert target.read_text() == "v2"
    assert target.stat().st_ino != inode, "content changes are written atomically (new inode)"


def test_update_moves_the_file_when_path_changes(proc, tmp_path) -> None:
    old, new = tmp_path / "old.txt", tmp_path / "sub" / "new.txt"
    task = make("mv", {"path": str(old), "content": "hi"})
    state = state_from(task, proc.create(task, ctx_for(task, "create")))
    moved = make("mv", {"path": str(new), "content": "hi"})
    result = proc.update(moved, ctx_for(moved, "update", state))
    assert new.read_text() == "hi" and not old.exists()
    assert result.outputs["path"] == str(new)


def test_delete_file_is_idempotent(proc, tmp_path) -> None:
    target = tmp_path / "gone"
    task = make("gone", {"path": str(target), "content": "x"})
    state = state_from(task, proc.create(task, ctx_for(task, "create")))
    proc.delete(task, ctx_for(task, "delete", state))
    assert not target.exists()
    result = proc.delete(task, ctx_for(task, "delete", state))
    assert "already absent" in (result.message or "")


def test_directory_lifecycle(proc, tmp_path) -> None:
    target = tmp_path / "site" / "static"
    task = make("dir", {"path": str(target), "mode": "0750"}, kind="Directory")
    result = proc.create(task, ctx_for(task, "create"))
    assert target.is_dir() and mode_of(target) == 0o750
    assert result.outputs["sha256"] is None and result.outputs["mode"] == "0750"
    (target / "index.html").write_text("<p>")
    with pytest.raises(OpusError, match="not empty"):
        proc.delete(task, ctx_for(task, "delete"))
    assert (target / "index.html").exists()
    forced = make("dir", {"path": str(target), "force": True}, kind="Directory")
    proc.delete(forced, ctx_for(forced, "delete"))
    assert not target.exists()


def test_spec_errors_name_task_and_field(proc, tmp_path) -> None:
    cases = [
        ({}, "spec.path"),
        ({"path": str(tmp_path / "a"), "colour": 1}, "spec.colour"),
        ({"path": str(tmp_path / "a"), "type": "pipe"}, "spec.type"),
        ({"path": str(tmp_path / "a"), "content": 3}, "spec.content"),
        ({"path": str(tmp_path / "a"), "vars": {"a": 1}}, "spec.vars"),
        ({"path": str(tmp_path / "a"), "type": "directory", "content": "x"}, "spec.content"),
        ({"path": str(tmp_path / "no" / "a"), "makeDirs": False}, "spec.makeDirs"),
    ]
    for spec, field in cases:
        task = make("t1", spec)
        with pytest.raises(OpusError) as info:
            proc.create(task, ctx_for(task, "create"))
        assert "'t1'" in str(info.value) and field in str(info.value)
    assert list(tmp_path.iterdir()) == [], "nothing is written when the spec is invalid"


# -- templates ----------------------------------------------------------------------------


def test_template_renders_vars(proc, tmp_path) -> None:
    target = tmp_path / "t.conf"
    spec = {
        "path": str(target),
        "template": True,
        "content": "name={{ name }}\nport={{port}}\n"
        "db={{ db.host }}:{{ db.port }}\ndebug={{ debug }}\n"
        "literal={{ not a placeholder\n",
        "vars": {"name": "web", "port": 8080, "db": {"host": "h", "port": 5432}, "debug": False},
    }
    task = make("t", spec)
    proc.create(task, ctx_for(task, "create"))
    assert target.read_text() == (
        "name=web\nport=8080\ndb=h:5432\ndebug=false\nliteral={{ not a placeholder\n"
    )


def test_template_without_flag_is_written_verbatim(proc, tmp_path) -> None:
    target = tmp_path / "raw"
    task = make("raw", {"path": str(target), "content": "{{ name }}"})
    proc.create(task, ctx_for(task, "create"))
    assert target.read_text() == "{{ name }}"


def test_template_unknown_variable_is_an_error(proc, tmp_path) -> None:
    task = make(
        "t",
        {"path": str(tmp_path / "x"), "template": True, "content": "{{ nope }}", "vars": {"a": 1}},
    )
    with pytest.raises(OpusError, match="'nope' is not defined"):
        proc.create(task, ctx_for(task, "create"))
    with pytest.raises(TemplateError):
        render("{{ a.b }}", {"a": {"c": 1}})
    assert render("{{ xs.1 }}", {"xs": ["a", "b"]}) == "b"


# -- drift and describe -------------------------------------------------------------------


def test_drift_after_manual_edit_chmod_and_removal(proc, tmp_path) -> None:
    target = tmp_path / "d.txt"
    task = make("d", {"path": str(target), "content": "one", "mode": "0644"})
    state = state_from(task, proc.create(task, ctx_for(task, "create")))
    clean = proc.detect_drift(task, ctx_for(task, "detect_drift", state))
    assert clean.drifted is False and clean.details["expected"] == clean.details["actual"]

    target.write_text("two")
    edited = proc.detect_drift(task, ctx_for(task, "detect_drift", state))
    assert edited.drifted is True and "content" in edited.message

    target.write_text("one")
    os.chmod(target, 0o666)
    chmodded = proc.detect_drift(task, ctx_for(task, "detect_drift", state))
    assert chmodded.drifted is True and "mode" in chmodded.message and "0666" in chmodded.message

    target.unlink()
    missing = proc.detect_drift(task, ctx_for(task, "detect_drift", state))
    assert missing.drifted is True and "missing" in missing.message


def test_drift_without_state_compares_with_spec(proc, tmp_path) -> None:
    target = tmp_path / "s.txt"
    target.write_text("hello")
    os.chmod(target, 0o644)
    same = make("s", {"path": str(target), "content": "hello", "mode": "0644"})
    assert proc.detect_drift(same, ctx_for(same, "detect_drift")).drifted is False
    other = make("s", {"path": str(target), "content": "bye", "mode": "0644"})
    assert proc.detect_drift(other, ctx_for(other, "detect_drift")).drifted is True


def test_drift_of_directory_mode(proc, tmp_path) -> None:
    target = tmp_path / "dd"
    task = make("dd", {"path": str(target), "mode": "0755"}, kind="Directory")
    state = state_from(task, proc.create(task, ctx_for(task, "create")))
    assert proc.detect_drift(task, ctx_for(task, "detect_drift", state)).drifted is False
    os.chmod(target, 0o700)
    assert proc.detect_drift(task, ctx_for(task, "detect_drift", state)).drifted is True


def test_describe_reports_what_is_there(proc, tmp_path) -> None:
    target = tmp_path / "desc"
    task = make("desc", {"path": str(target), "content": "abc", "mode": "0600"})
    missing = proc.describe(task, ctx_for(task, "describe"))
    assert missing.details["exists"] is False and missing.outputs == {}
    proc.create(task, ctx_for(task, "create"))
    found = proc.describe(task, ctx_for(task, "describe"))
    assert found.details["exists"] is True
    assert found.outputs["size"] == 3 and found.outputs["mode"] == "0600"


# -- rollback -----------------------------------------------------------------------------


def _fail_after_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the write land on disk and then fail, like a crash right after it."""
    import opus_file.processor as module

    real = module.atomic_write

    def write_then_fail(path, data, mode):
        real(path, data, mode)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(module, "atomic_write", write_then_fail)


def test_rollback_of_failed_update_restores_content_and_mode(tmp_path, monkeypatch) -> None:
    target = tmp_path / "app.conf"
    target.write_text("original\n")
    os.chmod(target, 0o600)
    proc = FileProcessor(backup_dir=tmp_path / "backups")
    task = make("conf", {"path": str(target), "content": "broken\n", "mode": "0644"})
    _fail_after_write(monkeypatch)
    with pytest.raises(OSError, match="No space"):
        proc.update(task, ctx_for(task, "update", run_id="run-7"))
    assert target.read_text() == "broken\n"
    monkeypatch.undo()

    # a fresh processor instance (as in another process) finds the backup on disk
    fresh = FileProcessor(backup_dir=tmp_path / "backups")
    result = fresh.rollback(task, ctx_for(task, "rollback", run_id="run-7", failed_action="update"))
    assert "restored" in (result.message or "")
    assert target.read_text() == "original\n" and mode_of(target) == 0o600
    assert not (tmp_path / "backups" / "dev").exists(), "the backup is gone once restored"


def test_rollback_of_failed_create_removes_file_and_created_dirs(tmp_path, monkeypatch) -> None:
    existing = tmp_path / "keep"
    existing.mkdir()
    target = existing / "a" / "b" / "new.txt"
    proc = FileProcessor(backup_dir=tmp_path / "backups")
    task = make("new", {"path": str(target), "content": "x"})
    _fail_after_write(monkeypatch)
    with pytest.raises(OSError):
        proc.create(task, ctx_for(task, "create"))
    assert target.exists()
    proc.rollback(task, ctx_for(task, "rollback", failed_action="create"))
    assert not (existing / "a").exists()
    assert existing.is_dir()


def test_rollback_of_failed_delete_restores_directory_tree(tmp_path, monkeypatch) -> None:
    target = tmp_path / "tree"
    (target / "sub").mkdir(parents=True)
    (target / "sub" / "f.txt").write_text("data")
    os.chmod(target, 0o710)
    proc = FileProcessor(backup_dir=tmp_path / "backups")
    task = make("tree", {"path": str(target), "force": True}, kind="Directory")
    import opus_file.processor as module

    real = module.shutil.rmtree

    def rmtree_then_fail(path, *a, **kw):
        real(path, *a, **kw)
        raise OSError("device went away")

    monkeypatch.setattr(module.shutil, "rmtree", rmtree_then_fail)
    with pytest.raises(OSError):
        proc.delete(task, ctx_for(task, "delete"))
    monkeypatch.undo()
    assert not target.exists()
    proc.rollback(task, ctx_for(task, "rollback", failed_action="delete"))
    assert (target / "sub" / "f.txt").read_text() == "data"
    assert mode_of(target) == 0o710


def test_rollback_without_backup_touches_nothing(proc, tmp_path) -> None:
    target = tmp_path / "precious"
    target.write_text("keep me")
    task = make("p", {"path": str(target), "mode": "bogus"})
    with pytest.raises(OpusError):
        proc.update(task, ctx_for(task, "update"))
    result = proc.rollback(task, ctx_for(task, "rollback", failed_action="update"))
    assert "nothing to roll back" in (result.message or "")
    assert target.read_text() == "keep me"


def test_default_backup_dir_comes_from_env(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OPUS_FILE_BACKUP_DIR", str(tmp_path / "envbackups"))
    proc = FileProcessor()
    assert proc.backups.root == tmp_path / "envbackups"
    monkeypatch.delenv("OPUS_FILE_BACKUP_DIR")
    monkeypatch.chdir(tmp_path)
    assert FileProcessor().backups.root == tmp_path / ".opus" / "backups" / "file"


# -- plugin wiring ------------------------------------------------------------------------


def test_hookimpl_registers_the_processor() -> None:
    from opus import hookspecs

    pm = pluggy.PluginManager("opus")
    pm.add_hookspecs(hookspecs)
    pm.register(opus_file)
    registered = [p for group in pm.hook.opus_register_processors() for p in group]
    assert registered == [FileProcessor]
    assert FileProcessor.api_version == "file/v1"
    assert set(FileProcessor.supported_actions()) == {
        "create",
        "update",
        "delete",
        "describe",
        "detect_drift",
        "rollback",
    }


def test_entry_point_is_declared() -> None:
    try:
        dist = importlib.metadata.distribution("opus-file")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("opus-file is not installed (pip install -e plugins/file)")
    eps = [ep for ep in dist.entry_points if ep.group == "opus"]
    assert [(ep.name, ep.value) for ep in eps] == [("file", "opus_file")]
    assert eps[0].load() is opus_file


# -- backup paths never leave their root -------------------------------------------------


def _tree(top: Path, skip: Path) -> dict[str, bytes | None]:
    """Every path under ``top`` except those under ``skip``, with file contents."""
    return {
        str(p): p.read_bytes() if p.is_file() else None
        for p in sorted(top.rglob("*"))
        if not p.is_relative_to(skip)
    }


@pytest.mark.parametrize(
    "context, task_name",
    [
        ("..", ".."),
        (".", ".."),
        ("", ""),
        ("../..", "x"),
        ("a/../../..", "../sibling"),
        ("%2E%2E", ".."),
    ],
)
def test_hostile_names_cannot_make_backups_escape_the_root(
    tmp_path: Path, context: str, task_name: str
) -> None:
    """Names are checked by opus before anything runs; the backup store checks again."""
    root = tmp_path / "a" / "b" / "backups"
    sibling = tmp_path / "a" / "sibling"
    sibling.mkdir(parents=True)
    (sibling / "keep.txt").write_text("precious")
    (tmp_path / "a" / "b" / "other").mkdir(parents=True)
    target = tmp_path / "work" / "f.txt"
    target.parent.mkdir()
    target.write_text("old")
    store = opus_file.BackupStore(root)
    before = _tree(tmp_path, skip=root)

    where = store.take(context, task_name, "run-1", [target])
    assert where.resolve().is_relative_to(root.resolve())
    assert where.resolve().parent.parent.parent == root.resolve()
    target.write_text("new")
    store.restore(context, task_name, "run-1")
    store.take(context, task_name, "run-2", [target])
    store.discard(context, task_name, "run-2")

    assert _tree(tmp_path, skip=root) == before, "nothing outside the backup root changed"
    assert target.read_text() == "old"


def test_a_symlink_inside_the_root_cannot_lead_backups_outside(tmp_path: Path) -> None:
    root = tmp_path / "backups"
    outside = tmp_path / "outside"
    outside.mkdir()
    root.mkdir()
    (root / "dev").symlink_to(outside)
    store = opus_file.BackupStore(root)
    with pytest.raises(OpusError, match="outside the backup root"):
        store.take("dev", "t", "run-1", [tmp_path / "f"])
    assert list(outside.iterdir()) == []
