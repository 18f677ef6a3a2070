"""Masking sensitive values in text and in nested data."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"


class Redactor:
    """Replaces every occurrence of any sensitive value with ``***``.

    Longer values are replaced first so a secret that contains another is masked whole.
    Empty values are ignored (they would match everywhere).
    """

    def __init__(self, values: Iterable[str] = ()) -> None:
        unique = {str(v) for v in values if v is not None and str(v) != ""}
        self.values = sorted(unique, key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self.values)

    def text(self, text: str) -> str:
        """``text`` with every sensitive value masked."""
        for value in self.values:
            if value in text:
                text = text.replace(value, MASK)
        return text

    def data(self, value: Any) -> Any:
        """A copy of ``value`` (dicts, lists, strings) with every sensitive value masked."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {k: self.data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.data(v) for v in value]
        return value
