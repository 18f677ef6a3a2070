"""A compact diff of two specs: added, removed and changed keys by dotted path."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    else:
        out[prefix] = value
    return out


def spec_diff(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    """``{"added": {path: v}, "removed": {path: v}, "changed": {path: [old, new]}}``.

    Nested mappings are compared key by key; lists and scalars as whole values.
    """
    before = _flatten(dict(old or {}), "", {})
    after = _flatten(dict(new), "", {})
    before.pop("", None)
    after.pop("", None)
    return {
        "added": {k: _plain(after[k]) for k in after if k not in before},
        "removed": {k: _plain(before[k]) for k in before if k not in after},
        "changed": {
            k: [_plain(before[k]), _plain(after[k])]
            for k in after
            if k in before and before[k] != after[k]
        },
    }


def _plain(value: Any) -> Any:
    """Values as JSON can carry them (the plan's "known after apply" placeholder as text)."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)
