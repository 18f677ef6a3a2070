"""Files and directories that may hold secrets: created private to the user.

opus state (``.opus/state.db`` and its ``-wal``/``-shm`` files), file/v1 backups and saved
plans can hold secrets (outputs, applied specs, old file content). They are created with mode
0600 (files) in directories created with mode 0700; existing paths keep their mode. These
helpers are for anyone writing such files (plugins included)::

    from opus.fsutil import write_private
    write_private(".opus/plans/apply.json", data)   # 0600, in 0700 directories it creates
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

#: Mode of files opus creates that may hold secrets.
PRIVATE_FILE = 0o600
#: Mode of directories opus creates for such files.
PRIVATE_DIR = 0o700


def make_private_dirs(path: str | os.PathLike[str]) -> Path:
    """Create directory ``path`` and its missing parents with mode 0700.

    Directories that already exist are left as they are. Safe when other threads or
    processes create the same directories at the same time.
    """
    target = Path(path).absolute()
    for attempt in range(10):  # a parent removed meanwhile (someone cleaning up): again
        missing: list[Path] = []
        current = target
        while not current.is_dir():
            missing.append(current)
            if current.parent == current:
                break
            current = current.parent
        try:
            for directory in reversed(missing):
                try:
                    os.mkdir(directory, PRIVATE_DIR)
                except FileExistsError:
                    if not directory.is_dir():
                        raise
            return target
        except FileNotFoundError:
            if attempt == 9:
                raise
    return target


def is_private(info: os.stat_result) -> bool:
    """Whether a file or directory with this ``os.stat`` result is the user's own and nobody
    else can write to it: what a cache that loads code or data from it needs. (Where there
    are no POSIX owners, as on Windows, it is trusted.)"""
    if not hasattr(os, "getuid"):
        return True
    return info.st_uid == os.getuid() and not info.st_mode & 0o022


def create_private_file(path: str | os.PathLike[str]) -> bool:
    """Create an empty file with mode 0600 unless ``path`` exists; returns whether it did.

    Software that later opens the file (SQLite) keeps the mode, so a database created this
    way stays private.
    """
    make_private_dirs(Path(path).parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def write_private(path: str | os.PathLike[str], data: bytes | str, *, fsync: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically with mode 0600 (an existing file is replaced).

    Missing parent directories are created with mode 0700. The content goes to a private
    temp file in the same directory, is fsynced (unless ``fsync=False``: a cache that checks
    its entries can skip it), and renamed over ``path``: readers see the old file or the new
    one, never a part.
    """
    target = Path(path).absolute()
    make_private_dirs(target.parent)
    payload = data.encode() if isinstance(data, str) else data
    fd, tmp = _new_temp_file(target)
    try:
        with os.fdopen(fd, "wb") as handle:  # created 0600
            handle.write(payload)
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        os.chmod(tmp, PRIVATE_FILE)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return target


#: How a temp file is opened: created here and now (never an existing file or a symlink).
_TEMP_FLAGS = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)


def _new_temp_file(target: Path) -> tuple[int, Path]:
    """A new file ``.NAME.RANDOM.tmp`` beside ``target``, mode 0600, open for writing.

    What ``tempfile.mkstemp`` does, without importing :mod:`tempfile` (and the
    :mod:`shutil`, :mod:`random`, compression modules it imports: milliseconds of a start).
    """
    for _ in range(100):
        tmp = target.with_name(f".{target.name}.{os.urandom(6).hex()}.tmp")
        try:
            return os.open(tmp, _TEMP_FLAGS, PRIVATE_FILE), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary file name", str(target.parent))


def copy_private(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Copy a regular file's bytes into a new file ``target`` created with mode 0600."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
        while chunk := src.read(1 << 20):
            out.write(chunk)


def is_no_space(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the disk or quota is full."""
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        current = current.__cause__ or current.__context__
    return False
