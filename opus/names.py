"""The rules for task and context names.

A name is 1–253 characters of ASCII letters, digits, ``-``, ``_`` and ``.``, starting and
ending with a letter or digit. So never ``.`` or ``..``, never a ``/`` or ``:``, whitespace,
a control character or NUL: a name is safe as a path component, as a table cell and inside a
``${VAR:task:KEY}`` reference.
"""

from __future__ import annotations

import re

from .errors import ConfigError

MAX_NAME_LENGTH = 253

#: The name rule as a regular expression (also used in the JSON Schema of a manifest).
NAME_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,251}[A-Za-z0-9])?$"
_NAME = re.compile(NAME_PATTERN)

RULE = "1-253 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"


def name_problem(name: object) -> str | None:
    """Why ``name`` is not a valid task or context name, or ``None`` when it is."""
    if not isinstance(name, str):
        return f"must be a string, not {type(name).__name__}"
    if not name:
        return "must not be empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"is {len(name)} characters long (at most {MAX_NAME_LENGTH})"
    if _NAME.match(name) and "\n" not in name:  # `$` also matches before a final newline
        return None
    bad = sorted({c for c in name if not (c.isascii() and (c.isalnum() or c in "._-"))})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        return f"contains {shown} (allowed: {RULE})"
    return f"must start and end with a letter or digit ({RULE})"


def is_valid_name(name: object) -> bool:
    return name_problem(name) is None


def check_context(context: object) -> str:
    """``context`` if it is a valid context name, else :class:`ConfigError`."""
    problem = name_problem(context)
    if problem is not None:
        raise ConfigError(f"invalid context name {context!r}: {problem}")
    assert isinstance(context, str)
    return context
