"""JSON text for what state keeps: JSON columns and run reports."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

#: allow_nan=False: never write NaN/Infinity, which are not JSON (outputs are checked
#: before; a spec holding one fails the save with a clear ValueError). Made once: json.dumps
#: with options builds an encoder on every call.
_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False, allow_nan=False)


def dump_json(value: Any) -> str | None:
    """JSON text for a JSON column (values JSON cannot hold are stored as strings)."""
    if value is None:
        return None
    if not value and type(value) in (dict, list):
        return "{}" if type(value) is dict else "[]"
    return _ENCODER.encode(value)


def dump_large_json(value: Any, depth: int = 2) -> str:
    """The same text as :func:`dump_json`, for a document whose mappings hold an entry per
    task (a run report): the top ``depth`` levels of mappings are encoded an entry at a time,
    so encoding never holds a piece of text for every value of the whole document at once."""
    if depth and isinstance(value, Mapping) and value:
        encode = _ENCODER.encode
        items = (f"{encode(str(k))}: {dump_large_json(v, depth - 1)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    return _ENCODER.encode(value)
