"""Whether to colour output: ``NO_COLOR`` and ``FORCE_COLOR`` win over the terminal check.

``NO_COLOR`` (any non-empty value, https://no-color.org) turns colour off even on a terminal;
``FORCE_COLOR`` (any non-empty value) turns it on when output is a pipe or a file, e.g. for
CI logs that render ANSI colours. ``NO_COLOR`` wins when both are set.
"""

from __future__ import annotations

import os
from typing import IO


def no_color() -> bool:
    return bool(os.environ.get("NO_COLOR"))


def force_color() -> bool:
    return bool(os.environ.get("FORCE_COLOR")) and not no_color()


def use_colour(stream: IO[str]) -> bool:
    """Colour for ``stream``: off with ``NO_COLOR``, on with ``FORCE_COLOR``, else on a TTY."""
    if no_color():
        return False
    if force_color():
        return True
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
