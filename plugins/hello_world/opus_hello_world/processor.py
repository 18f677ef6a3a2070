"""The ``hello-world/v1`` processor: writes a file with the given content."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from opus import Result, Task, TaskContext, TaskProcessor, validate_spec

DEFAULT_CONTENT = "Hello World!"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class HelloWorldProcessor(TaskProcessor):
    """Writes ``spec.content`` (default ``Hello World!``) to ``spec.path``.

    A changed ``path`` replaces the task (the old file is deleted, the new one written).
    """

    api_version = "hello-world/v1"
    replace_on = ("path",)
    spec_schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "hello-world/v1 spec",
        "type": "object",
        "additionalProperties": False,
        "required": ["path"],
        "properties": {
            "path": {"type": "string", "minLength": 1, "description": "The file to write."},
            "content": {
                "type": "string",
                "description": f"What to write (default {DEFAULT_CONTENT!r}).",
            },
        },
    }

    # -- helpers ----------------------------------------------------------------------------
    @classmethod
    def _path(cls, task: Task, ctx: TaskContext) -> Path:
        validate_spec(cls.spec_schema, ctx.spec, task=task.name)  # resolved: check again
        return Path(ctx.spec["path"])

    @staticmethod
    def _backup(path: Path, ctx: TaskContext) -> Path:
        return path.with_name(f".{path.name}.opus-backup-{ctx.run_id}")

    def _take_backup(self, path: Path, ctx: TaskContext) -> None:
        """Keep what is at ``path`` so rollback can restore it (an empty marker if nothing)."""
        backup = self._backup(path, ctx)
        if path.exists():
            backup.write_bytes(b"1" + path.read_bytes())
        else:
            backup.write_bytes(b"0")

    def _drop_backup(self, path: Path, ctx: TaskContext) -> None:
        self._backup(path, ctx).unlink(missing_ok=True)

    def _write(self, task: Task, ctx: TaskContext) -> Result:
        path = self._path(task, ctx)
        content = str(ctx.spec.get("content", DEFAULT_CONTENT))
        path.parent.mkdir(parents=True, exist_ok=True)
        self._take_backup(path, ctx)
        data = content.encode()
        tmp = path.with_name(f".{path.name}.opus-tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        self._drop_backup(path, ctx)
        ctx.logger.info("wrote %s (%d bytes)", path, len(data))
        digest = _sha256(data)
        return Result(
            outputs={"path": str(path), "sha256": digest, "size": len(data)},
            resource_checksum=digest,
        )

    # -- actions ----------------------------------------------------------------------------
    def create(self, task: Task, ctx: TaskContext) -> Result:
        return self._write(task, ctx)

    def update(self, task: Task, ctx: TaskContext) -> Result:
        return self._write(task, ctx)

    def delete(self, task: Task, ctx: TaskContext) -> None:
        path = self._path(task, ctx)
        if path.exists():
            self._take_backup(path, ctx)
            path.unlink()
            self._drop_backup(path, ctx)
            ctx.logger.info("removed %s", path)

    def describe(self, task: Task, ctx: TaskContext) -> Result:
        path = self._path(task, ctx)
        details: dict[str, Any] = {"path": str(path), "exists": path.exists()}
        if path.exists():
            data = path.read_bytes()
            details.update(size=len(data), sha256=_sha256(data))
        return Result(details=details)

    def detect_drift(self, task: Task, ctx: TaskContext) -> Result:
        path = self._path(task, ctx)
        if not path.exists():
            return Result(drifted=True, exists=False, message=f"{path} is missing")
        expected = ctx.state.resource_checksum if ctx.state else None
        if expected is None:
            expected = _sha256(str(ctx.spec.get("content", DEFAULT_CONTENT)).encode())
        actual = _sha256(path.read_bytes())
        if actual != expected:
            return Result(drifted=True, message=f"{path} content changed", resource_checksum=actual)
        return Result(drifted=False, resource_checksum=actual)

    def read(self, task: Task, ctx: TaskContext) -> Result:
        """``opus import``: adopt an existing file whose content is the spec's."""
        path = self._path(task, ctx)
        if not path.is_file():
            return Result(exists=False, message=f"{path} does not exist")
        data = path.read_bytes()
        digest = _sha256(data)
        expected = str(ctx.spec.get("content", DEFAULT_CONTENT)).encode()
        return Result(
            outputs={"path": str(path), "sha256": digest, "size": len(data)},
            resource_checksum=digest,
            drifted=data != expected,
            message=f"content of {path} differs from spec.content" if data != expected else None,
        )

    def rollback(self, task: Task, ctx: TaskContext) -> None:
        path = self._path(task, ctx)
        backup = self._backup(path, ctx)
        if not backup.exists():
            ctx.logger.info("nothing to roll back for %s", path)
            return
        saved = backup.read_bytes()
        if saved[:1] == b"1":
            path.write_bytes(saved[1:])
        else:
            path.unlink(missing_ok=True)
        backup.unlink()
        ctx.logger.info("rolled back %s after failed %s", path, ctx.failed_action)
