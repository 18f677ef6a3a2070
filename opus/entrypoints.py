"""Entry points of one group, read straight from the installed distributions' metadata.

``importlib.metadata`` costs ~25 ms at every start (it imports ``email``, ``zipfile``,
``csv``, ... and builds a ``Distribution`` per installed package). What opus needs is smaller:
the ``[opus]`` section of each ``entry_points.txt`` under ``*.dist-info`` / ``*.egg-info``
on ``sys.path``. This module reads exactly that, with importlib.metadata's rules (``sys.path``
order; a distribution found twice counts once, the first one wins; a directory is listed in
its own order), and nothing is cached between runs: a package ``pip install`` just added is
seen by the very next run. Where those rules are not enough (a zip or egg file on
``sys.path``, a meta-path finder with its own distributions) it asks importlib.metadata.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from typing import Any

_INFO_SUFFIXES = (".dist-info", ".egg-info")


class Distribution:
    """An installed distribution, known by its metadata directory; its name and version are
    read (two header lines) only when asked for."""

    __slots__ = ("path", "_headers")

    def __init__(self, path: str) -> None:
        self.path = path
        self._headers: dict[str, str] | None = None

    def _header(self, key: str) -> str | None:
        if self._headers is None:
            self._headers = {}
            for filename in ("METADATA", "PKG-INFO"):
                try:
                    with open(os.path.join(self.path, filename), encoding="utf-8") as file:
                        for line in file:
                            if not line.strip():
                                break  # the headers end at the first blank line
                            name, sep, value = line.partition(":")
                            if sep and not line[0].isspace():
                                self._headers.setdefault(name.strip().lower(), value.strip())
                    break
                except (OSError, UnicodeDecodeError):
                    continue
        return self._headers.get(key)

    @property
    def name(self) -> str:
        """The ``Name`` of the metadata (else the directory's name up to its version)."""
        return self._header("name") or _directory_name(self.path)

    @property
    def version(self) -> str | None:
        return self._header("version")


class EntryPoint:
    """One ``name = module[:attr]`` line of an ``entry_points.txt``."""

    __slots__ = ("name", "value", "group", "dist")

    def __init__(self, name: str, value: str, group: str, dist: Any) -> None:
        self.name = name
        self.value = value
        self.group = group
        self.dist = dist

    def load(self) -> Any:
        """Import the module and return the object the value names."""
        import importlib

        target = self.value.partition("[")[0]  # "module:attr [extra]": extras do not matter
        module_name, _, attrs = target.partition(":")
        obj: Any = importlib.import_module(module_name.strip())
        for attr in filter(None, attrs.strip().split(".")):
            obj = getattr(obj, attr)
        return obj

    def __repr__(self) -> str:
        return f"EntryPoint(name={self.name!r}, value={self.value!r}, group={self.group!r})"


def entry_points(group: str) -> list[EntryPoint]:
    """Every entry point of ``group`` among the distributions importable now."""
    if not _simple_path():
        return _from_importlib_metadata(group)
    found: list[EntryPoint] = []
    seen: set[str] = set()
    for info in _metadata_dirs():
        key = _normalize(_directory_name(info))
        if key in seen:
            continue
        seen.add(key)
        try:
            with open(os.path.join(info, "entry_points.txt"), encoding="utf-8") as file:
                text = file.read()
        except (OSError, UnicodeDecodeError):
            continue
        if f"[{group}]" in text:
            dist = Distribution(info)
            found += [EntryPoint(n, v, group, dist) for n, v in parse_section(text, group)]
    return found


def parse_section(text: str, group: str) -> Iterator[tuple[str, str]]:
    """``(name, value)`` of every line of the ``[group]`` section of an entry_points.txt."""
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            continue
        if section == group:
            name, sep, value = line.partition("=")
            if sep:
                yield name.strip(), value.strip()


def _metadata_dirs() -> Iterator[str]:
    """Every ``*.dist-info`` / ``*.egg-info`` directory on ``sys.path``, in search order."""
    for entry in sys.path:
        root = entry or "."
        try:
            names = os.listdir(root)
        except OSError:
            continue
        for name in names:
            if name.lower().endswith(_INFO_SUFFIXES):
                yield os.path.join(root, name)


def _simple_path() -> bool:
    """True when every distribution lives in a directory of ``sys.path`` (the usual case)."""
    from importlib.machinery import PathFinder

    for finder in sys.meta_path:
        if finder is not PathFinder and callable(getattr(finder, "find_distributions", None)):
            return False
    for entry in sys.path:
        if entry.lower().endswith(".egg") or (entry and os.path.isfile(entry)):
            return False  # an egg or a zip file: importlib.metadata knows how to read those
    return True


def _directory_name(path: str) -> str:
    """The distribution name in a metadata directory's name (``name-1.0.dist-info``)."""
    return os.path.basename(path).rpartition(".")[0].partition("-")[0]


def _normalize(name: str) -> str:
    """A distribution name as importlib.metadata compares them (PEP 503, ``_`` for ``-``)."""
    return re.sub(r"[-_.]+", "_", name.lower())


def _from_importlib_metadata(group: str) -> list[EntryPoint]:
    from importlib import metadata

    return [
        EntryPoint(ep.name, ep.value, group, ep.dist) for ep in metadata.entry_points(group=group)
    ]
