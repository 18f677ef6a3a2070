"""Small filesystem helpers: modes, checksums, atomic writes and inspection."""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ModeError(ValueError):
    """A ``mode`` value is not a valid permission mode."""


def parse_mode(value: Any) -> int | None:
    """Turn ``"0644"``, ``"644"``, ``"0o644"`` or an int into a permission mode (``None`` stays)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ModeError(f"mode must be an octal string like '0644', not {value!r}")
    if isinstance(value, int):
        mode = value  # YAML 1.1 already read 0644 as an octal int
        if mode > 0o777:  # an unquoted 644 in YAML is decimal 644 (0o1204): not a mode
            raise ModeError(
                f"mode {value} is the number {value} (octal {value:o}): write the octal "
                f"mode as a quoted string, such as '{value}' or '0644'"
            )
    elif isinstance(value, str):
        text = value.strip().lower().removeprefix("0o")
        if not text or any(ch not in "01234567" for ch in text):
            raise ModeError(f"mode must be an octal string like '0644', not {value!r}")
        mode = int(text, 8)
    else:
        raise ModeError(f"mode must be an octal string like '0644', not {type(value).__name__}")
    if not 0 <= mode <= 0o7777:
        raise ModeError(f"mode {value!r} is out of range (0000-7777)")
    return mode


def format_mode(mode: int) -> str:
    """``0o644`` -> ``"0644"``."""
    return f"{mode:04o}"


def default_file_mode() -> int:
    """The mode a new file gets from ``open()`` under the current umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def atomic_write(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` through a temp file in the same directory and a rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".opus-tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def missing_parents(path: Path) -> list[Path]:
    """The ancestors of ``path`` that do not exist yet, outermost first."""
    missing = []
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        missing.append(parent)
        parent = parent.parent
    return list(reversed(missing))


@dataclass(frozen=True)
class FileInfo:
    """What is at a path right now."""

    path: Path
    exists: bool
    type: str | None = None  # "file", "directory", "symlink" or "other"
    mode: int | None = None
    sha256: str | None = None
    size: int = 0

    @property
    def checksum(self) -> str | None:
        """A fingerprint of type, mode and content; ``None`` when nothing is there."""
        if not self.exists:
            return None
        mode = format_mode(self.mode) if self.mode is not None else "-"
        return sha256_bytes(f"{self.type}\0{mode}\0{self.sha256 or ''}".encode())

    def outputs(self) -> dict[str, Any]:
        """The task outputs: path, sha256, mode, size."""
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "mode": format_mode(self.mode) if self.mode is not None else None,
            "size": self.size,
        }


def inspect(path: Path) -> FileInfo:
    """Describe ``path`` without following a final symlink."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return FileInfo(path=path, exists=False)
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(path).encode()
        return FileInfo(path, True, "symlink", mode, sha256_bytes(target), len(target))
    if stat.S_ISDIR(st.st_mode):
        return FileInfo(path, True, "directory", mode, None, 0)
    if stat.S_ISREG(st.st_mode):
        data = path.read_bytes()
        return FileInfo(path, True, "file", mode, sha256_bytes(data), len(data))
    return FileInfo(path, True, "other", mode, None, st.st_size)
