"""On-disk backups taken before a file task changes anything, so ``rollback`` can undo it.

A backup lives in ``<root>/<context>/<task>/<run id>/``: ``manifest.json`` says, for each
path the action may touch, whether it existed, its type and mode, and where its saved
content is; it also lists the parent directories the action created. Backups are on disk
(not in memory) because rollback may run in another process than the failed action.

Backups hold old file content (maybe secrets): directories are created 0700 and files
0600. A backup left by a run that was killed (``kill -9``) is removed by the next run in
that context (:meth:`BackupStore.sweep`): a context is locked by one run at a time, so a
backup of another run id is stale.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from opus import OpusError
from opus.fsutil import copy_private, make_private_dirs, write_private

from .fsutil import atomic_write, inspect

logger = logging.getLogger(__name__)

#: Environment variable that moves the backup root (default ``.opus/backups/file``).
BACKUP_DIR_ENV = "OPUS_FILE_BACKUP_DIR"
DEFAULT_BACKUP_DIR = Path(".opus") / "backups" / "file"


def default_root() -> Path:
    """``$OPUS_FILE_BACKUP_DIR`` or ``.opus/backups/file`` under the working directory."""
    return Path(os.environ.get(BACKUP_DIR_ENV) or DEFAULT_BACKUP_DIR).absolute()


class BackupStore:
    """Saves what paths hold before an action and puts it back on rollback."""

    def __init__(self, root: Path | str | None = None) -> None:
        self._root = Path(root).absolute() if root is not None else None
        self._swept: set[tuple[Path, str, str]] = set()
        self._sweep_lock = threading.Lock()

    @property
    def root(self) -> Path:
        return self._root if self._root is not None else default_root()

    def location(self, context: str, task: str, run_id: str) -> Path:
        """``<root>/<context>/<task>/<run id>``, each name one plain path component.

        opus refuses names like ``..`` before anything runs; this checks again (defence in
        depth): whatever the names, the location is three levels below the root, or
        :class:`OpusError`.
        """
        root = self.root
        where = root / _component(context) / _component(task) / _component(run_id)
        resolved, real_root = where.resolve(), root.resolve()
        if resolved.parent.parent.parent != real_root:
            raise OpusError(
                f"backup location for context {context!r}, task {task!r} would be outside "
                f"the backup root {root}"
            )
        return where

    def take(
        self,
        context: str,
        task: str,
        run_id: str,
        paths: Iterable[Path],
        created_dirs: Iterable[Path] = (),
        *,
        deep: bool = False,
    ) -> Path:
        """Record what ``paths`` hold now, and the directories the action is about to create.

        A directory's content is copied only when ``deep`` (the action may remove it);
        otherwise only its mode is kept.
        """
        where = self.location(context, task, run_id)
        if where.exists():
            shutil.rmtree(where)
        for stale in where.parent.glob("*") if where.parent.exists() else ():
            shutil.rmtree(stale, ignore_errors=True)  # an older run's leftover for this task
        make_private_dirs(where)
        entries = []
        for index, path in enumerate(paths):
            entries.append(self._save(where, index, path, deep))
        manifest = {"entries": entries, "created_dirs": [str(p) for p in created_dirs]}
        write_private(where / "manifest.json", json.dumps(manifest, indent=2))
        logger.debug(
            "backup of %s for task %s taken in %s", [e["path"] for e in entries], task, where
        )
        return where

    def _save(self, where: Path, index: int, path: Path, deep: bool) -> dict[str, Any]:
        info = inspect(path)
        entry: dict[str, Any] = {"path": str(path), "existed": info.exists, "type": info.type}
        entry["mode"] = info.mode
        if info.type == "file":
            blob = f"{index}.bin"
            copy_private(path, where / blob)
            entry["blob"] = blob
        elif info.type == "symlink":
            entry["target"] = os.readlink(path)
        elif info.type == "directory" and deep:
            tree = f"{index}.tree"
            shutil.copytree(path, where / tree, symlinks=True)
            entry["blob"] = tree
        return entry

    def sweep(self, context: str, run_id: str) -> list[Path]:
        """Remove backups in ``context`` left by other runs (killed before they cleaned up).

        Done once per context and run; returns what was removed.
        """
        key = (self.root, context, run_id)
        with self._sweep_lock:
            if key in self._swept:
                return []
            self._swept.add(key)
        context_dir = self.root / quote(context, safe="")
        current = quote(run_id, safe="")
        removed = []
        for leftover in sorted(context_dir.glob("*/*")) if context_dir.is_dir() else ():
            if leftover.name != current and leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
                removed.append(leftover)
                try:
                    leftover.parent.rmdir()
                except OSError:
                    pass
        if removed:
            logger.warning(
                "removed %d stale file/v1 backup(s) of interrupted runs in context %s: %s",
                len(removed),
                context,
                ", ".join(str(p) for p in removed),
            )
        return removed

    def exists(self, context: str, task: str, run_id: str) -> bool:
        return (self.location(context, task, run_id) / "manifest.json").is_file()

    def restore(self, context: str, task: str, run_id: str) -> list[str]:
        """Put every saved path back as it was; returns what was done (empty: no backup)."""
        where = self.location(context, task, run_id)
        manifest_file = where / "manifest.json"
        if not manifest_file.is_file():
            return []
        manifest = json.loads(manifest_file.read_text())
        done = [self._restore_entry(where, entry) for entry in manifest["entries"]]
        for directory in reversed([Path(p) for p in manifest["created_dirs"]]):
            try:
                directory.rmdir()
                done.append(f"removed created directory {directory}")
            except FileNotFoundError:
                pass
            except OSError as exc:
                logger.warning(
                    "cannot remove directory %s created by task %s: %s", directory, task, exc
                )
        self.discard(context, task, run_id)
        return done

    def _restore_entry(self, where: Path, entry: dict[str, Any]) -> str:
        path = Path(entry["path"])
        if not entry["existed"]:
            current = inspect(path)
            if not current.exists:
                return f"{path}: absent, as before"
            if current.type == "directory":
                try:
                    path.rmdir()
                except OSError as exc:
                    logger.warning("cannot remove directory %s on rollback: %s", path, exc)
                    return f"{path}: directory left in place ({exc})"
            else:
                path.unlink()
            return f"removed {path}"
        _clear(path, keep_directory=entry["type"] == "directory")
        if entry["type"] == "file":
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, (where / entry["blob"]).read_bytes(), entry["mode"])
        elif entry["type"] == "symlink":
            os.symlink(entry["target"], path)
        elif entry["type"] == "directory":
            path.mkdir(parents=True, exist_ok=True)
            if entry.get("blob"):
                shutil.copytree(where / entry["blob"], path, symlinks=True, dirs_exist_ok=True)
            os.chmod(path, entry["mode"])
        return f"restored {path}"

    def discard(self, context: str, task: str, run_id: str) -> None:
        """Forget a backup (the action it guarded succeeded, or it was restored)."""
        where = self.location(context, task, run_id)
        shutil.rmtree(where, ignore_errors=True)
        root = self.root
        for parent in where.parents:  # empty task, context and root directories go too
            try:
                parent.rmdir()
            except OSError:
                break
            if parent == root:
                break


def _component(name: str) -> str:
    """``name`` as one path component: ``/`` and ``%`` quoted, and never empty, ``.`` or
    ``..`` (leading dots are quoted too)."""
    text = quote(str(name), safe="")
    stripped = text.lstrip(".")
    return "%2E" * (len(text) - len(stripped)) + stripped if text.startswith(".") else text or "%"


def _clear(path: Path, *, keep_directory: bool) -> None:
    """Remove what is at ``path`` now unless it is a directory that is being restored."""
    current = inspect(path)
    if not current.exists:
        return
    if current.type != "directory":
        path.unlink()
    elif not keep_directory:
        shutil.rmtree(path)
