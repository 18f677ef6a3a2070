"""Loading tasks from YAML files and directories (multi-document)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .errors import ManifestError, OpusError, ValidationErrors
from .model import Task
from .yamlsafe import SafeLoader, YamlProblem, documents

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


def _documents(path: Path, loader: type[Any] = SafeLoader) -> Iterator[tuple[int, object]]:
    """``(line, data)`` for each non-empty document of a YAML file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot read file: {exc}", file=str(path)) from None
    try:
        yield from documents(text, loader)
    except YamlProblem as exc:
        raise ManifestError(f"invalid YAML: {exc.problem}", file=str(path), line=exc.line) from None


def collect_file(
    path: str | Path, loader: type[Any] = SafeLoader
) -> tuple[list[Task], list[OpusError]]:
    """The valid tasks of one file and the problems of the others (a document may be a
    list of tasks)."""
    path = Path(path)
    tasks: list[Task] = []
    problems: list[OpusError] = []
    try:
        for line, data in _documents(path, loader):
            items = data if isinstance(data, list) else [data]
            for item in items:
                if item is None:
                    continue
                try:
                    tasks.append(Task.from_manifest(item, source=f"{path}:{line}"))
                except ManifestError as exc:
                    problems.append(exc)
    except ManifestError as exc:  # unreadable file or invalid YAML: stop reading this file
        problems.append(exc)
    return tasks, problems


def load_file(path: str | Path) -> list[Task]:
    """Tasks of one file; a document may be one task or a list of tasks."""
    tasks, problems = collect_file(path)
    if problems:
        raise problems[0] if len(problems) == 1 else ValidationErrors(problems)
    return tasks


def collect_tasks(paths: Iterable[str | Path]) -> tuple[list[Task], list[OpusError]]:
    """The valid tasks of every file and every problem found, so that callers can report
    manifest problems together with the graph and variable problems of the other tasks."""
    paths = list(paths)
    files = manifest_files(paths)
    if not files:
        raise ManifestError(
            "no task manifests found (*.yaml, *.yml)", file=", ".join(map(str, paths))
        )
    tasks: list[Task] = []
    problems: list[OpusError] = []
    for path in files:
        found, bad = collect_file(path)
        tasks.extend(found)
        problems.extend(bad)
    return tasks, problems


def load_tasks(paths: Iterable[str | Path]) -> list[Task]:
    """Tasks from files and directories, in file order; every problem is reported at once."""
    tasks, problems = collect_tasks(paths)
    if problems:
        raise problems[0] if len(problems) == 1 else ValidationErrors(problems)
    return tasks
