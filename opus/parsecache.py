"""A cache of parsed manifest files, so that an unchanged file is not parsed again.

Parsing YAML is most of what loading manifests costs. Each file that parses without a
problem is stored, as the ``(line, data)`` of its documents, under a key that hashes the
file's exact bytes together with everything else the result depends on (the loader and its
constructors and resolvers, PyYAML's installed files -- found without importing PyYAML, so
a hit never imports it --, the opus and Python versions, the source of :mod:`opus.yamlsafe`
and :mod:`opus.yamlloader`, and the alias bound). A changed file, loader or version gives another
key, so an entry can never be stale; old entries are pruned by age when the cache grows
beyond :data:`MAX_BYTES`.

* Where: ``$OPUS_CACHE_DIR``, else ``$XDG_CACHE_HOME/opus``, else ``~/.cache/opus``
  (the config key ``cache_dir`` sets it for a project), in a ``manifests`` directory.
* Off: ``OPUS_NO_CACHE=1`` in the environment or ``cache: false`` in the config file;
  ``OPUS_CACHE_DIR=off`` turns off every cache opus keeps, this one included.
* Safe: entries are :mod:`marshal` data (never pickle; a file whose data marshal cannot
  hold, such as YAML timestamps, is simply not cached), written atomically with mode 0600
  in a 0700 directory, each with a checksum: an entry that is corrupt, truncated or
  unreadable is ignored and the file read again. A cache directory that another user owns
  or can write to is not used.

Only files that parsed are cached, so every error message and line is the parser's own.
"""

from __future__ import annotations

import logging
import marshal
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .digests import blake2b, sha256

logger = logging.getLogger(__name__)

#: Bumped when the layout of an entry changes.
FORMAT = b"opus-parse-cache 1\n"

#: The size the cache may grow to before its oldest entries are removed.
MAX_BYTES = 64 * 1024 * 1024

#: Environment variables: the cache directory, and turning the cache off.
ENV_DIR = "OPUS_CACHE_DIR"
ENV_OFF = "OPUS_NO_CACHE"

_DIGEST = 16  # bytes of the blake2b checksum of each entry's payload
_FALSE = ("", "0", "false", "no", "off")
_DIR_OFF = ("off", "0", "none")  # OPUS_CACHE_DIR values that turn every cache off


def default_directory(environ: Mapping[str, str] | None = None) -> Path:
    """``$OPUS_CACHE_DIR``, else ``$XDG_CACHE_HOME/opus``, else ``~/.cache/opus``."""
    env = os.environ if environ is None else environ
    if env.get(ENV_DIR, "").strip():
        return Path(env[ENV_DIR].strip()).expanduser()
    xdg = env.get("XDG_CACHE_HOME")
    if xdg and Path(xdg).is_absolute():  # the XDG spec: a relative value is ignored
        return Path(xdg) / "opus"
    return Path("~/.cache/opus").expanduser()


def settings(
    config: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, dict[str, Any]]:
    """The effective ``cache`` and ``cache_dir`` settings with their sources (environment >
    config file > default), as ``opus config`` shows them."""
    env = os.environ if environ is None else environ
    values = config or {}
    out: dict[str, dict[str, Any]] = {}
    if env.get(ENV_DIR, "").strip().lower() in _DIR_OFF:  # as for the schema cache
        enabled, source = False, "environment"
    elif ENV_OFF in env:
        enabled, source = env[ENV_OFF].strip().lower() in _FALSE, "environment"
    elif "cache" in values:
        enabled, source = bool(values["cache"]), "config file"
    else:
        enabled, source = True, "default"
    out["cache"] = {"value": enabled, "source": source, "envvar": ENV_OFF}
    directory: str | None
    try:
        if env.get(ENV_DIR, "").strip().lower() in _DIR_OFF:
            directory, source = None, "environment"
        elif env.get(ENV_DIR, "").strip():
            directory, source = str(default_directory(env)), "environment"
        elif values.get("cache_dir"):
            directory, source = str(Path(values["cache_dir"]).expanduser()), "config file"
        else:
            directory, source = str(default_directory(env)), "default"
    except RuntimeError:  # no home directory to find ~ in: no cache
        directory, source = None, "default"
    out["cache_dir"] = {"value": directory, "source": source, "envvar": ENV_DIR}
    return out


#: The config file's values as the CLI found them (:func:`configure`); ``None`` in library use.
_config: Mapping[str, Any] | None = None


def configure(config: Mapping[str, Any] | None) -> None:
    """Make the config file's ``cache``/``cache_dir`` count for every cache of this process
    (the CLI calls it once it has read ``opus.yaml``)."""
    global _config
    _config = config


def cache_root(
    config: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Path | None:
    """The directory every cache of opus lives under (``manifests/``, ``schemas/``), or
    ``None`` when caching is off; ``config`` defaults to what :func:`configure` was given."""
    found = settings(_config if config is None else config, environ)
    if not found["cache"]["value"] or found["cache_dir"]["value"] is None:
        return None
    return Path(found["cache_dir"]["value"])


def from_settings(
    config: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> ParseCache | None:
    """The cache the settings ask for, or ``None`` when it is turned off."""
    root = cache_root(config, environ)
    return None if root is None else ParseCache(root / "manifests")


_ENVIRONMENT: list[bytes] = []


def _files_of(directory: str) -> list[str]:
    """Name, size and modification time of each file in ``directory`` (not below it)."""
    found = []
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.is_file():
                info = entry.stat()
                found.append(f"{entry.name} {info.st_size} {info.st_mtime_ns}")
    return sorted(found)


def _pyyaml_files() -> list[str]:
    """Where PyYAML is installed and what its files are, found without importing it: a new
    version, a rebuilt libyaml binding or an edited file gives other lines. (A system libyaml
    that the binding links to dynamically, upgraded in place, is not seen; PyYAML's wheels
    carry their own.)"""
    import importlib.util

    try:
        spec = importlib.util.find_spec("yaml")
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return ["pyyaml none"]
    lines = [f"pyyaml {spec.origin}"]
    for directory in spec.submodule_search_locations or ():
        try:
            lines += _files_of(directory)
        except OSError:
            lines.append(f"unreadable {directory}")
    return lines


def _environment() -> bytes:
    """The versions and sources every entry depends on (computed once per process, without
    importing PyYAML: a hit needs no parser)."""
    if not _ENVIRONMENT:
        from . import __version__, yamlsafe

        sources = []
        for name in ("yamlsafe.py", "yamlloader.py"):  # the loader's source, not imported
            try:
                path = Path(str(yamlsafe.__file__)).with_name(name)
                sources.append(sha256(path.read_bytes()).hexdigest())
            except (OSError, TypeError):
                sources.append("unknown")
        _ENVIRONMENT.append(
            "\n".join(
                [
                    f"opus {__version__}",
                    f"yamlsafe {' '.join(sources)}",
                    *_pyyaml_files(),
                    f"python {sys.implementation.cache_tag} marshal {marshal.version}",
                ]
            ).encode()
        )
    return _ENVIRONMENT[0]


class ParseCache:
    """Parsed files by key, in ``directory`` (created 0700 on first write), at most
    ``max_bytes`` in all."""

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int = MAX_BYTES) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._usable: bool | None = None
        self._total: int | None = None  # bytes in the directory, once counted

    def key(self, data: bytes, loader: type[Any] | None, alias_limit: int) -> str:
        """The key of a file whose bytes are ``data``, read by ``loader`` (``None``: the
        default one; see :func:`opus.yamlsafe.loader_identity`)."""
        from .yamlsafe import loader_identity

        digest = sha256(FORMAT)
        digest.update(_environment())
        digest.update(loader_identity(loader))
        digest.update(f"\naliases {alias_limit}\n".encode())
        digest.update(data)
        return digest.hexdigest()

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.bin"

    def _directory_is_private(self) -> bool:
        """Whether the directory is ours alone (not another user's, nobody else can write);
        a missing directory is fine (it is created private)."""
        if self._usable is None:
            try:
                info = os.stat(self.directory)
            except FileNotFoundError:
                return True
            except OSError:
                self._usable = False
                return False
            from .fsutil import is_private

            self._usable = is_private(info)
            if not self._usable:
                logger.warning(
                    "not using the manifest cache %s: another user owns it or can write to it",
                    self.directory,
                )
        return self._usable

    def get(self, key: str) -> list[tuple[int, Any]] | None:
        """The documents stored under ``key``; ``None`` if there is no usable entry."""
        if not self._directory_is_private():
            return None
        path = self._path(key)
        try:
            with open(path, "rb") as handle:
                blob = handle.read()
        except OSError:
            return None
        head = len(FORMAT) + _DIGEST
        payload = blob[head:]
        if (
            blob[: len(FORMAT)] != FORMAT
            or blake2b(payload, digest_size=_DIGEST).digest() != blob[len(FORMAT) : head]
        ):
            logger.debug("ignoring a corrupt manifest cache entry %s", path)
            return None
        try:
            found = marshal.loads(payload)
        except (EOFError, ValueError, TypeError):
            return None
        if not isinstance(found, list) or not all(
            type(item) is tuple and len(item) == 2 and type(item[0]) is int for item in found
        ):
            return None
        try:
            os.utime(path)  # recently used: kept longest when pruning
        except OSError:
            pass
        return found

    def put(self, key: str, documents: list[tuple[int, Any]]) -> None:
        """Store ``documents`` under ``key``, unless marshal cannot hold them or the cache
        cannot be written (a cache never fails a run)."""
        if not self._directory_is_private():
            return
        try:
            payload = marshal.dumps(documents)
        except ValueError:  # a timestamp, say: not cached
            return
        blob = FORMAT + blake2b(payload, digest_size=_DIGEST).digest() + payload
        from .fsutil import write_private

        try:
            write_private(self._path(key), blob, fsync=False)
        except OSError as exc:
            logger.debug("cannot write the manifest cache entry: %s", exc)
            return
        if self._total is None:
            self._total = sum(size for _, size, _ in self._entries())
        else:
            self._total += len(blob)
        if self._total > self.max_bytes:
            self.prune()

    def _entries(self) -> list[tuple[float, int, Path]]:
        found: list[tuple[float, int, Path]] = []
        try:
            with os.scandir(self.directory) as entries:
                for entry in entries:
                    if entry.name.endswith(".bin"):
                        try:
                            info = entry.stat()
                        except OSError:
                            continue
                        found.append((info.st_mtime, info.st_size, Path(entry.path)))
        except OSError:
            pass
        return found

    def prune(self) -> None:
        """Remove the least recently used entries until the cache holds at most three
        quarters of :attr:`max_bytes`."""
        entries = sorted(self._entries(), key=lambda item: item[0])
        total = sum(size for _, size, _ in entries)
        goal = self.max_bytes * 3 // 4
        for _, size, path in entries:
            if total <= goal:
                break
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError:
                continue
            total -= size
        self._total = total
