"""JSON text for what state keeps: JSON columns and run reports."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

#: allow_nan=False: never write NaN/Infinity, which are not JSON (outputs are checked
#: before; a spec holding one fails the save with a clear ValueError). Made once: json.dumps
#: with options builds an encoder on every call.
_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False, allow_nan=False)
#: How a string is written (the encoder's own function for ``ensure_ascii=False``).
_string = json.encoder.encode_basestring

#: Entries of a large mapping encoded in one go.
SLICE = 256


def dump_json(value: Any) -> str | None:
    """JSON text for a JSON column (values JSON cannot hold are stored as strings)."""
    if value is None:
        return None
    if not value and type(value) in (dict, list):
        return "{}" if type(value) is dict else "[]"
    return _ENCODER.encode(value)


def dump_large_json(value: Any) -> str:
    """The same text as :func:`dump_json`, for a document whose mappings hold an entry per
    task (a run report): a large mapping is encoded :data:`SLICE` entries at a time, so
    encoding never holds a piece of text for every value of the whole document at once."""
    if not isinstance(value, Mapping) or not all(type(key) is str for key in value):
        return _ENCODER.encode(value)
    if len(value) > SLICE:
        items = list(value.items())
        parts = (
            _ENCODER.encode(dict(items[start : start + SLICE]))[1:-1]
            for start in range(0, len(items), SLICE)
        )
        return "{" + ", ".join(parts) + "}"
    if any(isinstance(item, Mapping) for item in value.values()):
        entries = (f"{_string(key)}: {dump_large_json(item)}" for key, item in value.items())
        return "{" + ", ".join(entries) + "}"
    return _ENCODER.encode(value)


def dump_names(names: Iterable[str]) -> str:
    """``dump_json(list(names))`` for a list of strings, without the encoder's set-up."""
    return "[" + ", ".join(map(_string, names)) + "]"
