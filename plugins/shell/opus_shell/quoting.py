"""Writing referenced values into shell commands as data.

The core resolves ``${...}`` references before a command runs; ``ShellProcessor`` asks it
(``TaskProcessor.render_reference``) to write each value quoted for the place the reference
stands in the command:

- outside quotes (also inside ``$(...)`` and backticks): :func:`shlex.quote`;
- inside double quotes: ``\\``, ``$``, `````` and ``"`` are backslash-escaped;
- inside single quotes: each ``'`` becomes ``'\\''``;
- after a here-document operator (``<<``): refused, as no quoting is safe in a heredoc body
  (pass the value through ``env:`` instead).

A value substituted this way is one word of data to the shell, whatever it holds.
"""

from __future__ import annotations

import shlex
from typing import Literal

Where = Literal["plain", "single", "double", "heredoc"]


class UnsafeReference(ValueError):
    """A reference stands where its value cannot be quoted (a heredoc body)."""


def context_at(text: str, offset: int) -> Where:
    """The shell quoting context at ``text[offset]`` (a small lexer; sh/bash syntax)."""
    stack: list[str] = []  # "'", '"', "$(" or "`"
    heredoc = False
    i = 0
    while i < offset:
        c = text[i]
        top = stack[-1] if stack else ""
        if top == "'":
            if c == "'":
                stack.pop()
        elif top == '"':
            if c == "\\":
                i += 1
            elif c == '"':
                stack.pop()
            elif text.startswith("$(", i):
                stack.append("$(")
                i += 1
            elif c == "`":
                stack.append("`")
        else:  # unquoted, or inside $(...) / backticks
            if c == "\\":
                i += 1
            elif c in ("'", '"'):
                stack.append(c)
            elif text.startswith("$(", i):
                stack.append("$(")
                i += 1
            elif c == ")" and top == "$(":
                stack.pop()
            elif c == "`":
                if top == "`":
                    stack.pop()
                else:
                    stack.append("`")
            elif text.startswith("<<<", i):  # a here-string is an ordinary word
                i += 2
            elif text.startswith("<<", i):
                heredoc = True
                i += 1
        i += 1
    if heredoc:
        return "heredoc"
    top = stack[-1] if stack else ""
    if top == "'":
        return "single"
    if top == '"':
        return "double"
    return "plain"


def quote_for(where: Where, text: str) -> str:
    """``text`` written so that the shell reads it back unchanged, as data, at ``where``."""
    if where == "plain":
        return shlex.quote(text)
    if where == "double":
        return "".join("\\" + c if c in '\\$`"' else c for c in text)
    if where == "single":
        return text.replace("'", "'\\''")
    raise UnsafeReference(
        "a reference in a here-document cannot be quoted safely; pass the value through "
        "'env:' and use $NAME in the heredoc (or set 'rawReferences: true')"
    )
