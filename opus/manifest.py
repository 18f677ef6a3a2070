"""Loading tasks from YAML files and directories (multi-document)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import yamlsafe
from .collector import paused
from .errors import ManifestError, OpusError, ValidationErrors
from .model import TOP_LEVEL_KEYS, Task, unknown_top_level
from .yamlsafe import YamlProblem, documents

if TYPE_CHECKING:
    from .parsecache import ParseCache

#: ``cache`` argument meaning "the cache the environment asks for" (see :mod:`opus.parsecache`).
DEFAULT_CACHE: Any = object()

#: File endings read when a directory is given.
MANIFEST_SUFFIXES = (".yaml", ".yml")


def manifest_files(paths: Iterable[str | Path]) -> list[Path]:
    """The files named, and every ``*.yaml``/``*.yml`` below the directories named, sorted."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.suffix in MANIFEST_SUFFIXES
                and p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise ManifestError("no such file or directory", file=str(path))
    return files


def _resolve_cache(cache: ParseCache | None) -> ParseCache | None:
    if cache is DEFAULT_CACHE:
        from .parsecache import from_settings

        return from_settings()
    return cache


def _documents(
    path: Path, loader: type[Any] | None = None, cache: ParseCache | None = None
) -> Iterator[tuple[int, object]]:
    """``(line, data)`` for each non-empty document of a YAML file (from ``cache`` when
    the file's bytes were parsed before)."""
    data: bytes | None
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ManifestError(f"cannot read file: {exc}", file=str(path)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:  # read as text for the error's own wording (its position)
        data = None
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ManifestError(f"cannot read file: {exc}", file=str(path)) from None
    if "\r" in text:  # universal newlines, as a file read as text has them
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    key = None
    if cache is not None and data is not None:
        key = cache.key(data, loader, yamlsafe.MAX_ALIAS_NODES)  # a hit imports no parser
        cached = cache.get(key)
        if cached is not None:
            yield from cached
            return
    found: list[tuple[int, object]] = []
    problem: YamlProblem | None = None
    try:  # parsed whole before anything is yielded: stored as the parser made it
        found.extend(documents(text, loader))
    except YamlProblem as exc:
        problem = exc
    if cache is not None and key is not None and problem is None:
        cache.put(key, found)
    yield from found
    if problem is not None:
        raise ManifestError(
            f"invalid YAML: {problem.problem}", file=str(path), line=problem.line
        ) from None


def _as_meant(doc: Mapping[Any, Any]) -> dict[str, Any]:
    """``doc`` with only the top-level keys a manifest may have, an unknown one that looks
    like a misspelling of one it lacks (``spce`` without ``spec``) read as that key: so
    the lack is not reported as well, and what the document holds is still checked."""
    import difflib

    meant = {k: v for k, v in doc.items() if k in TOP_LEVEL_KEYS}
    for key, value in doc.items():
        if key in TOP_LEVEL_KEYS:
            continue
        missing = [k for k in TOP_LEVEL_KEYS if k not in meant]
        close = difflib.get_close_matches(str(key), missing, n=1, cutoff=0.6)
        if close:
            meant[close[0]] = value
    return meant


def collect_file(
    path: str | Path, loader: type[Any] | None = None, *, cache: ParseCache | None = DEFAULT_CACHE
) -> tuple[list[Task], list[OpusError]]:
    """The tasks of one file and every problem found in it (a document may be a list of
    tasks). A document with unknown top-level keys is still made a task, without them, so
    that its spec is checked in the same pass (a key that looks like a misspelling of one
    it lacks read as that key); their problem is listed, so nothing runs.
    ``cache``: a :class:`~opus.parsecache.ParseCache`, ``None`` for none, by default the
    one the environment asks for."""
    path = Path(path)
    tasks: list[Task] = []
    problems: list[OpusError] = []
    try:
        for line, data in _documents(path, loader, _resolve_cache(cache)):
            items = data if isinstance(data, list) else [data]
            for item in items:
                if item is None:
                    continue
                source = f"{path}:{line}"
                unknown = unknown_top_level(item, source=source)
                if unknown is not None and isinstance(item, Mapping):
                    problems.append(unknown)  # and the rest checked in this pass:
                    item = _as_meant(item)
                try:
                    tasks.append(Task.from_manifest(item, source=source))
                except ManifestError as exc:
                    problems.append(exc)
    except ManifestError as exc:  # unreadable file or invalid YAML: stop reading this file
        problems.append(exc)
    return tasks, problems


def load_file(path: str | Path, *, cache: ParseCache | None = DEFAULT_CACHE) -> list[Task]:
    """Tasks of one file; a document may be one task or a list of tasks."""
    tasks, problems = collect_file(path, cache=cache)
    if problems:
        raise problems[0] if len(problems) == 1 else ValidationErrors(problems)
    return tasks


def collect_tasks(
    paths: Iterable[str | Path], *, cache: ParseCache | None = DEFAULT_CACHE
) -> tuple[list[Task], list[OpusError]]:
    """The tasks of every file (see :func:`collect_file`) and every problem found, so
    that callers, who run nothing while there are problems, can report
    manifest problems together with the graph and variable problems of the other tasks.

    Parsed files are kept in ``cache`` (by default the one the environment asks for, see
    :mod:`opus.parsecache`; ``None``: no cache)."""
    paths = list(paths)
    cache = _resolve_cache(cache)
    files = manifest_files(paths)
    if not files:
        raise ManifestError(
            "no task manifests found (*.yaml, *.yml)", file=", ".join(map(str, paths))
        )
    tasks: list[Task] = []
    problems: list[OpusError] = []
    with paused():  # many containers, no garbage cycles
        for path in files:
            found, bad = collect_file(path, cache=cache)
            tasks.extend(found)
            problems.extend(bad)
    return tasks, problems


def load_tasks(
    paths: Iterable[str | Path], *, cache: ParseCache | None = DEFAULT_CACHE
) -> list[Task]:
    """Tasks from files and directories, in file order; every problem is reported at once."""
    tasks, problems = collect_tasks(paths, cache=cache)
    if problems:
        raise problems[0] if len(problems) == 1 else ValidationErrors(problems)
    return tasks
