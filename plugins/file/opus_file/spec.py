"""The ``file/v1`` spec: its JSON Schema and a typed view of a validated spec."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opus import SpecError, validate_spec

from .fsutil import parse_mode
from .template import TemplateError, render

TYPES = ("file", "directory")

#: The ``file/v1`` spec (JSON Schema 2020-12), checked by opus before anything runs.
SPEC_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "file/v1 spec",
    "type": "object",
    "additionalProperties": False,
    "required": ["path"],
    "properties": {
        "path": {"type": "string", "minLength": 1, "description": "The file or directory."},
        "type": {"enum": list(TYPES), "description": "Default: from the kind (Directory)."},
        "content": {"type": ["string", "null"], "description": "The file's text."},
        "mode": {
            "type": ["integer", "string"],
            "minimum": 0,
            # a number is a mode as it is (YAML reads an unquoted 644 as decimal 644, which
            # is 0o1204): above 0o777, which every such misreading of 600-777 is, quote it
            "maximum": 0o777,
            "pattern": r"^\s*(0[oO])?0*[0-7]{1,4}\s*$",
            "x-opus-message": (
                "must be an octal mode like '0644' (0000-7777), quoted (YAML reads 644 as a "
                "decimal number)"
            ),
            "description": "Permissions, an octal string like '0644'.",
        },
        "template": {"type": "boolean", "description": "Render content as a template."},
        "vars": {"type": "object", "description": "Template variables."},
        "encoding": {"type": "string", "minLength": 1, "description": "Default utf-8."},
        "makeDirs": {"type": "boolean", "description": "Create missing parents (default)."},
        "force": {"type": "boolean", "description": "Remove non-empty directories."},
    },
    "dependentSchemas": {
        "vars": {
            "required": ["template"],
            "properties": {"template": {"const": True}},
            "x-opus-message": "'vars' given but 'template: true' is not set",
        }
    },
}


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
        """The typed view of a resolved spec (checked against :data:`SPEC_SCHEMA` again,
        since a reference may have resolved to a value of the wrong type)."""
        validate_spec(SPEC_SCHEMA, spec, task=task)
        type_ = spec.get("type") or ("directory" if kind.lower() == "directory" else "file")
        content = None
        if type_ == "file":
            content = _content(task, spec)
        elif "content" in spec:
            raise SpecError("a directory has no content", task=task, path="spec.content")
        return cls(
            path=Path(spec["path"]).expanduser().absolute(),
            type=type_,
            content=content,
            mode=parse_mode(spec.get("mode")),
            make_dirs=spec.get("makeDirs", True),
            force=spec.get("force", False),
        )


def _content(task: str, spec: Mapping[str, Any]) -> bytes:
    text = spec.get("content") or ""
    if spec.get("template", False):
        try:
            text = render(text, spec.get("vars") or {})
        except TemplateError as exc:
            raise SpecError(str(exc), task=task, path="spec.content") from None
    encoding = spec.get("encoding", "utf-8")
    try:
        return text.encode(encoding)
    except (LookupError, UnicodeEncodeError) as exc:
        raise SpecError(str(exc), task=task, path="spec.encoding") from None
