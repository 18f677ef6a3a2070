"""The ``file/v1`` spec: parsing and validation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opus import OpusError

from .fsutil import ModeError, parse_mode
from .template import TemplateError, render

TYPES = ("file", "directory")
KNOWN_KEYS = {
    "path",
    "type",
    "content",
    "mode",
    "template",
    "vars",
    "encoding",
    "makeDirs",
    "force",
}


class FileSpecError(OpusError):
    """A ``file/v1`` spec is invalid; the message names the task and the field."""

    def __init__(self, task: str, field: str, message: str) -> None:
        self.task = task
        self.field = field
        super().__init__(f"task {task!r}, field 'spec.{field}': {message}")


@dataclass(frozen=True)
class FileSpec:
    """A validated ``file/v1`` spec; ``content`` is rendered and encoded (``None`` for dirs)."""

    path: Path
    type: str
    content: bytes | None
    mode: int | None
    make_dirs: bool
    force: bool

    @classmethod
    def parse(cls, task: str, spec: Mapping[str, Any], kind: str = "File") -> FileSpec:
        unknown = sorted(set(spec) - KNOWN_KEYS)
        if unknown:
            raise FileSpecError(
                task, unknown[0], f"unknown key (known: {', '.join(sorted(KNOWN_KEYS))})"
            )
        path = spec.get("path")
        if not isinstance(path, str) or not path:
            raise FileSpecError(task, "path", "required: the file or directory to manage")
        kind_type = "directory" if kind.lower() == "directory" else "file"
        type_ = spec.get("type", kind_type)
        if type_ not in TYPES:
            raise FileSpecError(task, "type", f"must be one of {', '.join(TYPES)}, not {type_!r}")
        try:
            mode = parse_mode(spec.get("mode"))
        except ModeError as exc:
            raise FileSpecError(task, "mode", str(exc)) from None
        content = None
        if type_ == "file":
            content = _content(task, spec)
        elif "content" in spec:
            raise FileSpecError(task, "content", "a directory has no content")
        return cls(
            path=Path(path).expanduser().absolute(),
            type=type_,
            content=content,
            mode=mode,
            make_dirs=bool(spec.get("makeDirs", True)),
            force=bool(spec.get("force", False)),
        )


def _content(task: str, spec: Mapping[str, Any]) -> bytes:
    text = spec.get("content", "")
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise FileSpecError(task, "content", f"must be a string, not {type(text).__name__}")
    variables = spec.get("vars") or {}
    if not isinstance(variables, Mapping):
        raise FileSpecError(task, "vars", "must be a mapping of template variables")
    if spec.get("template", False):
        try:
            text = render(text, variables)
        except TemplateError as exc:
            raise FileSpecError(task, "content", str(exc)) from None
    elif variables:
        raise FileSpecError(task, "vars", "given but 'template: true' is not set")
    encoding = spec.get("encoding", "utf-8")
    try:
        return text.encode(encoding)
    except (LookupError, UnicodeEncodeError) as exc:
        raise FileSpecError(task, "encoding", str(exc)) from None
