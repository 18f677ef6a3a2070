"""A summary table drawn without rich, for plain pipes: the same characters rich draws.

Importing rich costs tens of milliseconds; a run whose output goes to a file or a pipe
(CI logs, scripts) only needs boxes and padding. :func:`plain_table` returns ``None``
whenever rich would draw something else (colours forced, an encoding without box
characters, text rich would treat as markup or emoji, wide or control characters, a table
wider than the console), and the caller then uses rich.
"""

from __future__ import annotations

import re
from typing import IO

#: The console width rich is given for pipes (see ``output.console_for``).
PIPE_WIDTH = 4000

_RICH_SYNTAX = re.compile(r"\[|:\S*?:")


def _simple(text: str) -> bool:
    return text.isascii() and text.isprintable() and not _RICH_SYNTAX.search(text)


def plain_table(
    title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]], out: IO[str]
) -> str | None:
    """``title`` and the table as rich draws them on a plain pipe, or ``None`` if rich
    would draw them differently."""
    encoding = (getattr(out, "encoding", None) or "").lower().replace("-", "")
    if encoding != "utf8" or not title.isprintable() or len(title) > PIPE_WIDTH:
        return None
    cells = [columns, *rows]
    if any(len(row) != len(columns) or not all(map(_simple, row)) for row in cells):
        return None
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    if sum(widths) + 3 * len(widths) + 1 > PIPE_WIDTH:
        return None

    def rule(left: str, fill: str, cross: str, right: str) -> str:
        return left + cross.join(fill * (w + 2) for w in widths) + right

    def line(row: tuple[str, ...], bar: str) -> str:
        return (
            bar + bar.join(f" {cell.ljust(w)} " for cell, w in zip(row, widths, strict=True)) + bar
        )

    lines = [title, rule("┏", "━", "┳", "┓"), line(columns, "┃"), rule("┡", "━", "╇", "┩")]
    lines += [line(row, "│") for row in rows]
    lines.append(rule("└", "─", "┴", "┘"))
    return "\n".join(lines) + "\n"
