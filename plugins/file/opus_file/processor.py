"""``FileProcessor``: the ``file/v1`` processor."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

from opus import Result, SpecError, Task, TaskContext, TaskProcessor

from .backup import BackupStore
from .fsutil import (
    FileInfo,
    atomic_write,
    default_file_mode,
    format_mode,
    inspect,
    missing_parents,
    sha256_bytes,
)
from .spec import SPEC_SCHEMA, FileSpec

logger = logging.getLogger(__name__)


class FileProcessor(TaskProcessor):
    """Manages one file (with content and mode) or one directory.

    Before create, update and delete it backs up what the path holds (see
    :class:`~opus_file.backup.BackupStore`), so ``rollback`` restores it exactly: the old
    content and mode, or no file at all where there was none.
    """

    api_version = "file/v1"
    spec_schema = SPEC_SCHEMA
    #: a new path is a new file: apply deletes the old one (recorded spec) and creates it
    replace_on = ("path",)

    def __init__(self, backup_dir: Path | str | None = None) -> None:
        self.backups = BackupStore(backup_dir)

    # -- actions -----------------------------------------------------------------------------

    def create(self, task: Task, ctx: TaskContext) -> Result:
        """Write the file (or make the directory) as the spec says."""
        self.backups.sweep(ctx.context, ctx.run_id)
        return self._apply(task, ctx)

    def update(self, task: Task, ctx: TaskContext) -> Result:
        """Bring the path in line with the spec; a moved path removes the old one."""
        self.backups.sweep(ctx.context, ctx.run_id)
        return self._apply(task, ctx)

    def delete(self, task: Task, ctx: TaskContext) -> Result:
        """Remove the file or directory (a non-empty directory only with ``force: true``).

        ``ctx.spec`` is the recorded spec: what was applied is what is removed.
        """
        self.backups.sweep(ctx.context, ctx.run_id)
        spec = FileSpec.parse(task.name, ctx.spec, task.kind)
        path = _applied_path(ctx) or spec.path
        info = inspect(path)
        if not info.exists:
            return Result(message=f"{path} already absent")
        if info.type == "directory" and any(path.iterdir()) and not spec.force:
            raise SpecError(
                f"directory {path} is not empty; set 'force: true' to remove it",
                task=task.name,
                path="spec.force",
            )
        self.backups.take(ctx.context, task.name, ctx.run_id, [path], deep=info.type == "directory")
        _remove(path, force=True)
        self.backups.discard(ctx.context, task.name, ctx.run_id)
        ctx.logger.info("removed %s %s", info.type, path)
        return Result(message=f"removed {path}")

    def describe(self, task: Task, ctx: TaskContext) -> Result:
        """What is at the path now (outputs), and whether it exists (details)."""
        spec = FileSpec.parse(task.name, ctx.spec, task.kind)
        info = inspect(_applied_path(ctx) or spec.path)
        details = {"exists": info.exists, "type": info.type, **info.outputs()}
        return Result(outputs=info.outputs() if info.exists else {}, details=details)

    def detect_drift(self, task: Task, ctx: TaskContext) -> Result:
        """Drifted when the path is missing or its type, content or mode changed.

        Compares with what the last create/update recorded in state, or with the spec when
        there is no state.
        """
        spec = FileSpec.parse(task.name, ctx.spec, task.kind)
        info = inspect(_applied_path(ctx) or spec.path)
        expected = self._expected(spec, ctx, info)
        reasons = _differences(expected, info)
        details: dict[str, Any] = {"path": str(info.path), "reasons": reasons}
        details.update(expected=expected.checksum, actual=info.checksum)
        message = "; ".join(reasons) if reasons else "in sync"
        return Result(drifted=bool(reasons), message=message, details=details, exists=info.exists)

    def read(self, task: Task, ctx: TaskContext) -> Result:
        """``opus import``: adopt what is at the path when it matches the spec (type,
        content, mode)."""
        spec = FileSpec.parse(task.name, ctx.spec, task.kind)
        info = inspect(spec.path)
        if not info.exists:
            return Result(exists=False, message=f"{spec.path} does not exist")
        reasons = _differences(self._expected(spec, ctx, info), info)
        return Result(
            outputs=info.outputs(),
            resource_checksum=info.checksum,
            drifted=bool(reasons),
            message="; ".join(reasons) or None,
        )

    def rollback(self, task: Task, ctx: TaskContext) -> Result:
        """Restore what the failed action found at the path (content and mode, or nothing)."""
        done = self.backups.restore(ctx.context, task.name, ctx.run_id)
        if not done:
            return Result(message=f"nothing to roll back for {ctx.failed_action or 'the action'}")
        for line in done:
            ctx.logger.info("rollback: %s", line)
        return Result(message="; ".join(done))

    # -- helpers -----------------------------------------------------------------------------

    def _apply(self, task: Task, ctx: TaskContext) -> Result:
        spec = FileSpec.parse(task.name, ctx.spec, task.kind)
        old_path = _applied_path(ctx)
        moved = old_path is not None and old_path != spec.path and inspect(old_path).exists
        if not spec.make_dirs and not spec.path.parent.is_dir():
            raise SpecError(
                f"parent directory {spec.path.parent} does not exist",
                task=task.name,
                path="spec.makeDirs",
            )
        touched = [spec.path, old_path] if moved else [spec.path]
        deep = moved and spec.force
        # Parents first (other tasks may create the same ones at the same time: only those
        # this action made are recorded, so only those are removed on rollback).
        created = _make_parents(spec.path)
        try:
            self.backups.take(ctx.context, task.name, ctx.run_id, touched, created, deep=deep)  # type: ignore[arg-type]
        except BaseException:
            _remove_created(created)
            raise
        if spec.type == "directory":
            _ensure_directory(task.name, spec)
        else:
            _ensure_file(task.name, spec)
        if moved:
            assert old_path is not None
            if _remove(old_path, force=spec.force):
                ctx.logger.info("removed previous path %s", old_path)
            else:
                ctx.logger.warning("previous directory %s is not empty; left in place", old_path)
        info = inspect(spec.path)
        self.backups.discard(ctx.context, task.name, ctx.run_id)
        ctx.logger.info(
            "%s %s is in place (mode %s)", spec.type, spec.path, format_mode(info.mode or 0)
        )
        return Result(outputs=info.outputs(), resource_checksum=info.checksum)

    def _expected(self, spec: FileSpec, ctx: TaskContext, actual: FileInfo) -> FileInfo:
        state = ctx.state
        if state is not None and state.outputs.get("path"):
            out = state.outputs
            mode = int(out["mode"], 8) if out.get("mode") else None
            return FileInfo(
                Path(out["path"]), True, spec.type, mode, out.get("sha256"), out.get("size") or 0
            )
        mode = spec.mode if spec.mode is not None else actual.mode
        if spec.type == "directory":
            return FileInfo(spec.path, True, "directory", mode, None, 0)
        data = spec.content or b""
        return FileInfo(spec.path, True, "file", mode, sha256_bytes(data), len(data))


def _make_parents(path: Path) -> list[Path]:
    """Create the missing parent directories of ``path``; returns those made here."""
    made = []
    for directory in missing_parents(path):
        try:
            directory.mkdir()
        except FileExistsError:  # another task (or process) made it meanwhile
            if not directory.is_dir():
                raise
            continue
        made.append(directory)
    return made


def _remove_created(directories: list[Path]) -> None:
    for directory in reversed(directories):
        try:
            directory.rmdir()
        except OSError:
            break


def _applied_path(ctx: TaskContext) -> Path | None:
    """The path the last successful create/update wrote, from state outputs."""
    if ctx.state is not None and ctx.state.outputs.get("path"):
        return Path(ctx.state.outputs["path"])
    return None


def _ensure_directory(task: str, spec: FileSpec) -> None:
    info = inspect(spec.path)
    if info.exists and info.type != "directory":
        raise SpecError(
            f"{spec.path} exists and is a {info.type}, not a directory", task=task, path="spec.path"
        )
    spec.path.mkdir(exist_ok=True)
    if spec.mode is not None and info.mode != spec.mode:
        os.chmod(spec.path, spec.mode)


def _ensure_file(task: str, spec: FileSpec) -> None:
    info = inspect(spec.path)
    if info.type == "directory":
        raise SpecError(f"{spec.path} is a directory, not a file", task=task, path="spec.path")
    data = spec.content or b""
    mode = spec.mode
    if mode is None:
        mode = info.mode if info.type == "file" and info.mode is not None else default_file_mode()
    if info.type == "file" and info.sha256 == sha256_bytes(data):
        if info.mode != mode:
            os.chmod(spec.path, mode)
        return
    atomic_write(spec.path, data, mode)


def _remove(path: Path, *, force: bool) -> bool:
    """Remove ``path``; a non-empty directory only with ``force``. Returns whether it is gone."""
    info = inspect(path)
    if info.type == "directory":
        if force:
            shutil.rmtree(path)
        else:
            try:
                path.rmdir()
            except OSError:
                return False
    elif info.exists:
        path.unlink()
    return True


def _differences(expected: FileInfo, actual: FileInfo) -> list[str]:
    if not actual.exists:
        return [f"{actual.path} is missing"]
    reasons = []
    if actual.type != expected.type:
        reasons.append(f"{actual.path} is a {actual.type}, expected a {expected.type}")
    elif expected.sha256 is not None and actual.sha256 != expected.sha256:
        reasons.append(f"content of {actual.path} changed")
    if expected.mode is not None and actual.mode != expected.mode:
        reasons.append(
            f"mode of {actual.path} is {format_mode(actual.mode or 0)}, "
            f"expected {format_mode(expected.mode)}"
        )
    return reasons
