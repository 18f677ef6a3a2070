"""JSON text for what state keeps: JSON columns and run reports."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from itertools import islice
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
    task (a run report; any mapping, not only dicts: one that makes its values when read
    is read a slice at a time): a large mapping is encoded :data:`SLICE` entries at a time and the
    pieces are joined once, so encoding never holds a piece of text for every value of the
    whole document, nor more than one copy of its text besides the result."""
    pieces: list[str] = []
    _encode_pieces(value, pieces)
    return "".join(pieces)


def _encode_pieces(value: Any, out: list[str]) -> None:
    if isinstance(value, Mapping) and type(value) is not dict and len(value) <= SLICE:
        value = dict(value)  # a mapping that makes its values when read: read them once
    if not isinstance(value, Mapping) or not all(type(key) is str for key in value):
        out.append(_ENCODER.encode(dict(value) if isinstance(value, Mapping) else value))
    elif len(value) > SLICE:
        items = iter(value.items())
        separator = "{"
        while chunk := dict(islice(items, SLICE)):
            out.append(separator)
            out.append(_ENCODER.encode(chunk)[1:-1])
            separator = ", "
        out.append("}")
    elif any(
        isinstance(item, Mapping) and (type(item) is not dict or len(item) > SLICE)
        for item in value.values()
    ):  # a mapping inside that makes its values when read, or a large one: in pieces
        out.append("{")
        for index, (key, item) in enumerate(value.items()):
            out.append(f"{', ' if index else ''}{_string(key)}: ")
            _encode_pieces(item, out)
        out.append("}")
    else:
        out.append(_ENCODER.encode(value))


def dump_names(names: Iterable[str]) -> str:
    """``dump_json(list(names))`` for a list of strings, without the encoder's set-up."""
    return "[" + ", ".join(map(_string, names)) + "]"
