"""Masking sensitive values in text and nested data, without mangling unrelated text.

A value of :data:`MIN_SUBSTRING` characters or more is masked wherever it occurs, even
inside a longer word (a token inside a URL or a base64 blob). A shorter value is masked only
where it stands alone — not touching a letter, digit or ``_`` — so a one-letter "secret"
like ``e`` masks ``e`` in ``PIN=e`` but leaves ``hello`` alone. (Values that short are
guessable anyway; make real secrets long.) Empty values are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

#: What a masked value is replaced by.
MASK = "***"
#: Values at least this long are masked inside words too.
MIN_SUBSTRING = 6


class Masker:
    """Replaces every occurrence of any sensitive value with :data:`MASK`.

    Longer values are tried first, so a secret that contains another is masked whole.
    """

    def __init__(self, values: Iterable[Any] = ()) -> None:
        unique = {str(v) for v in values if v is not None and str(v) != ""}
        self.values = sorted(unique, key=lambda v: (-len(v), v))
        alternatives = [
            re.escape(v) if len(v) >= MIN_SUBSTRING else rf"(?<![\w]){re.escape(v)}(?![\w])"
            for v in self.values
        ]
        self._pattern = re.compile("|".join(alternatives)) if alternatives else None
        self._exact = frozenset(unique)

    def __bool__(self) -> bool:
        return bool(self.values)

    def text(self, text: str) -> str:
        """``text`` with every sensitive value masked."""
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)

    def data(self, value: Any) -> Any:
        """A copy of ``value`` (dicts, lists, strings) with every sensitive value masked;
        a number that is a sensitive value (a PIN) is masked whole."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {k: self.data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.data(v) for v in value]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return MASK if str(value) in self._exact else value
        return value
