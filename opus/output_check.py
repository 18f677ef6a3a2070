"""Task outputs must be JSON: checked where an action returns, so a bad value fails the task
(and rolls it back) instead of being stringified or written as invalid JSON."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .errors import OpusError

_HELP = (
    "outputs must be JSON values (strings, numbers, booleans, null, lists, and mappings "
    "with string keys)"
)


#: Output types that are always JSON (not float: NaN and Infinity are not).
_PLAIN = frozenset({str, int, bool, type(None)})


class OutputNotJSONError(OpusError):
    """A processor returned an output that is not a JSON value."""


def check_outputs(task_name: str, action: str, outputs: Mapping[Any, Any]) -> None:
    """Raise :class:`OutputNotJSONError` naming the first output (and path inside it) that is not
    JSON: a datetime, bytes, a set, an object, a non-string key, NaN or Infinity."""
    if all(type(key) is str and type(value) in _PLAIN for key, value in outputs.items()):
        return  # the common case: flat text, whole numbers, booleans, nulls
    problem = _problem(dict(outputs), "outputs")
    if problem:
        raise OutputNotJSONError(
            f"task {task_name!r}: {action} returned an output that is not JSON: {problem}; {_HELP}"
        )


def _problem(value: Any, path: str) -> str | None:
    if value is None or isinstance(value, (str, bool, int)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{path} is {value!r} (JSON has no NaN/Infinity)"
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = _problem(item, f"{path}[{index}]")
            if found:
                return found
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{path} has a {type(key).__name__} key {key!r}"
            found = _problem(item, f"{path}.{key}")
            if found:
                return found
        return None
    kind = f"{type(value).__module__}.{type(value).__qualname__}".removeprefix("builtins.")
    hint = " (convert it, e.g. to an ISO 8601 string)" if "date" in kind or "time" in kind else ""
    return f"{path} is a {kind}{hint}"
