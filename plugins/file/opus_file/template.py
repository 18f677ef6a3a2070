"""A tiny ``{{ name }}`` renderer for file content (no Jinja).

``{{ name }}`` is replaced by ``vars[name]``; ``{{ a.b }}`` walks nested mappings. Text that
is not a well-formed placeholder (for example a lone ``{{``) is left as it is. A placeholder
whose name is not in ``vars`` is an error naming it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*)\s*\}\}")


class TemplateError(KeyError):
    """A placeholder names a variable that ``vars`` does not define."""

    def __str__(self) -> str:
        return str(self.args[0])


def _lookup(variables: Mapping[str, Any], dotted: str) -> Any:
    value: Any = variables
    for part in dotted.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            known = ", ".join(sorted(map(str, variables))) or "none"
            raise TemplateError(f"template variable {dotted!r} is not defined (vars: {known})")
    return value


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def render(text: str, variables: Mapping[str, Any]) -> str:
    """Replace every ``{{ name }}`` in ``text`` with its value from ``variables``."""
    return _PLACEHOLDER.sub(lambda m: _text(_lookup(variables, m.group(1))), text)


def placeholders(text: str) -> list[str]:
    """The variable names ``text`` refers to, in order of first use."""
    seen: dict[str, None] = {}
    for match in _PLACEHOLDER.finditer(text):
        seen.setdefault(match.group(1), None)
    return list(seen)
