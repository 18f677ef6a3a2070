"""fastjsonschema validators (and opus' own schema shortcuts) compiled once per machine.

``fastjsonschema.compile`` writes Python source for a schema and compiles it: ~10 ms for
opus' metadata schema, paid by every ``opus`` run that validates manifests. This module
keeps the compiled code object (``marshal``, as Python's own ``__pycache__`` does) in a
private per-user cache directory, keyed by a hash of the schema, the fastjsonschema version
and the Python version, so a later run loads it in well under a millisecond. Anything
unusual (no cache directory, a schema that is not JSON, a damaged file) falls back to
compiling in memory; the cache never changes what a schema accepts.

Location: ``schemas`` under the cache directory (``$OPUS_CACHE_DIR``, else
``$XDG_CACHE_HOME/opus``, else ``~/.cache/opus``, or ``cache_dir`` in ``opus.yaml``), created
private (0700) and used only when it belongs to this user and nobody else can write to it.
The settings that turn the manifest parse cache off turn this one off too.

:func:`compile_source` does the same for the Python source :mod:`opus.schemashortcut`
writes for a schema (~1-2 ms of ``compile`` per schema), keyed by a hash of that source.
"""

from __future__ import annotations

import json
import logging
import marshal
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .fsutil import is_private, make_private_dirs, write_private

logger = logging.getLogger(__name__)

#: Bumped when what is stored changes shape.
_FORMAT = "1"
#: Files kept; past this, the least recently written half is removed.
MAX_ENTRIES = 512


def cache_dir() -> Path | None:
    """The directory compiled validators live in (``None``: caching is off): ``schemas``
    under the cache directory of :func:`opus.parsecache.cache_root`, which the same
    settings turn off (``OPUS_NO_CACHE=1``, ``OPUS_CACHE_DIR=off``, ``cache: false``)."""
    from .parsecache import cache_root

    root = cache_root()
    return None if root is None else root / "schemas"


def _usable(directory: Path) -> bool:
    """Create ``directory`` (0700) if needed; True when it is private."""
    try:
        make_private_dirs(directory)
        return is_private(directory.stat())
    except OSError:
        return False


def compile_validator(schema: Any) -> Callable[[Any], Any]:
    """``fastjsonschema.compile(schema)``, from the cache when this schema was seen before."""
    import fastjsonschema

    directory = cache_dir()
    try:
        text = json.dumps(schema, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):  # not plain JSON: no stable key for it
        directory = None
    if directory is None:
        return fastjsonschema.compile(schema)
    from .digests import sha256

    version = f"{_FORMAT}:{fastjsonschema.VERSION}:{sys.implementation.cache_tag}"
    digest = sha256(f"{version}\n{text}".encode()).hexdigest()
    path = directory / f"{digest[:40]}.bin"
    code = _load(path)
    if code is None:
        source = fastjsonschema.compile_to_code(schema)
        code = compile(source, f"<opus schema {digest[:12]}>", "exec")
        _store(directory, path, code)
    namespace: dict[str, Any] = {}
    exec(code, namespace)  # the code fastjsonschema generated for this very schema
    validate: Callable[[Any], Any] = namespace["validate"]
    return validate


def compile_source(source: str, filename: str) -> Any:
    """``compile(source, filename, "exec")``, from the cache when this source was seen."""
    directory = cache_dir()
    if directory is None:
        return compile(source, filename, "exec")
    from .digests import sha256

    version = f"{_FORMAT}:source:{sys.implementation.cache_tag}:{filename}"
    digest = sha256(f"{version}\n{source}".encode()).hexdigest()
    path = directory / f"{digest[:40]}.bin"
    code = _load(path)
    if code is None:
        code = compile(source, filename, "exec")
        _store(directory, path, code)
    return code


def _load(path: Path) -> Any:
    try:
        with open(path, "rb") as file:
            if not (is_private(os.fstat(file.fileno())) and is_private(path.parent.stat())):
                logger.debug("schema cache %s is not private; ignoring it", path)
                return None
            data = file.read()
        return marshal.loads(data)
    except FileNotFoundError:
        return None
    except (OSError, EOFError, ValueError, TypeError) as exc:  # damaged: compile again
        logger.debug("schema cache %s unreadable (%s); compiling", path, exc)
        return None


def _store(directory: Path, path: Path, code: Any) -> None:
    if not _usable(directory):
        return
    try:
        write_private(path, marshal.dumps(code), fsync=False)  # all of it or nothing
        _prune(directory)
    except OSError as exc:
        logger.debug("cannot write schema cache %s: %s", path, exc)


def _prune(directory: Path) -> None:
    entries = [entry for entry in os.scandir(directory) if entry.name.endswith(".bin")]
    if len(entries) <= MAX_ENTRIES:
        return
    entries.sort(key=lambda entry: entry.stat().st_mtime)
    for entry in entries[: len(entries) // 2]:
        try:
            os.unlink(entry.path)
        except OSError:
            pass
