"""Writing referenced values into shell commands as data.

The core resolves ``${...}`` references before a command runs; ``ShellProcessor`` asks it
(``TaskProcessor.render_reference``) to write each value quoted for the place the reference
stands in the command, as found by :func:`context_at`, a small lexer of sh/bash syntax:

- outside quotes (also inside ``$(...)``, ``(...)`` and backticks): :func:`shlex.quote`;
- inside double quotes: ``\\``, ``$``, `````` and ``"`` are backslash-escaped;
- inside single quotes: each ``'`` becomes ``'\\''``;
- inside ANSI-C quotes (``$'...'``): the string is closed, the value written single-quoted,
  and a new ``$'`` opened — so a shell without ``$'...'`` (dash) reads data too;
- inside a ``#`` comment: one quoted word with newlines turned into spaces (the comment
  cannot end early);
- inside arithmetic (``$((...))``, ``((...))``): a decimal integer as it is, anything else
  refused;
- refused, with :class:`UnsafeReference`: after a here-document operator (``<<``), after
  ``case`` inside a substitution (its ``)`` patterns are not lexed), and in ``$'...'`` after
  an escaped quote (shells disagree where it ends).

A value substituted this way is one word of data to the shell, whatever it holds.
:func:`rendered_forms` lists every text a value can be written as, for redaction.
"""

from __future__ import annotations

import re
import shlex
from typing import Literal

Where = Literal[
    "plain", "single", "double", "ansi", "comment", "heredoc", "arith", "case", "ansi-escaped"
]

#: What a value in arithmetic may be: a decimal integer, nothing bash could evaluate.
_INTEGER = re.compile(r"-?[0-9]{1,18}")

#: Characters that end a word (and so may be followed by a ``#`` comment).
_BREAKS = frozenset(" \t\n;&|()<>")

#: Why a reference cannot be quoted where it stands, by context.
_REFUSALS = {
    "heredoc": "a reference in a here-document cannot be quoted safely; pass the value "
    "through 'env:' and use $NAME in the heredoc (or set 'rawReferences: true')",
    "arith": "a reference in arithmetic ($((...))) is evaluated as code by bash even when "
    "quoted, so only a decimal integer may stand there; pass anything else through 'env:' "
    "and check it first (or set 'rawReferences: true')",
    "case": "a reference after 'case' inside $(...) or `...` cannot be located reliably; "
    "pass the value through 'env:' (or set 'rawReferences: true')",
    "ansi-escaped": "a reference in $'...' after an escaped quote (\\') cannot be quoted "
    "safely (shells disagree where that string ends); pass the value through 'env:'",
}


class UnsafeReference(ValueError):
    """A reference stands where its value cannot be quoted safely."""


class _Frame:
    """One open construct: a quote, ``$(``, ``(``, a backtick, ``${`` or arithmetic."""

    __slots__ = ("kind", "depth", "escaped")

    def __init__(self, kind: str) -> None:
        self.kind = kind  # "'", "$'", '"', "$(", "(", "`", "${", "(("
        self.depth = 0  # parentheses open inside arithmetic
        self.escaped = False  # $'...': an escaped quote was seen in it


#: Frames whose inside is a list of commands (a '#' at a word start there is a comment).
_COMMAND_FRAMES = ("$(", "(", "`")


def context_at(text: str, offset: int) -> Where:
    """The shell quoting context at ``text[offset]``."""
    stack: list[_Frame] = []
    word_start = True  # the next unquoted character starts a word
    case_seen = False  # 'case' in a substitution: its ')' patterns are not lexed
    i = 0
    while i < offset:
        c = text[i]
        top = stack[-1] if stack else None
        if top is not None and top.kind in ("'", "$'", '"', "(("):
            before = len(stack)
            i = _quoted_step(text, i, top, stack)
            word_start = len(stack) > before and stack[-1].kind in _COMMAND_FRAMES
            continue
        # unquoted: top level, or inside $(...), (...), `...` or ${...}
        kind = top.kind if top else ""
        if text.startswith("\\\n", i):  # a line continuation joins, it ends no word
            i += 2
            continue
        if c == "#" and word_start and kind != "${":
            end = _comment_end(text, i, kind)
            if end >= offset:
                return "comment"
            i = end
            continue
        if word_start and kind in _COMMAND_FRAMES and _word_at(text, i) == "case":
            case_seen = True
        if c == ")" and kind in ("$(", "("):
            stack.pop()
            i += 1
            word_start = kind == "("  # '$(...)' is part of a word, '(...)' is not
            continue
        if (c == "}" and kind == "${") or (c == "`" and kind == "`"):
            stack.pop()
            i += 1
            word_start = False
            continue
        if text.startswith("((", i) and word_start:  # the arithmetic command
            stack.append(_Frame("(("))
            i += 2
            continue
        if c == "(":
            stack.append(_Frame("("))
            i += 1
            word_start = True
            continue
        if text.startswith("<<<", i):  # a here-string is an ordinary word
            i += 3
            word_start = True
            continue
        if text.startswith("<<", i):
            return "heredoc"
        if c in _BREAKS:
            i += 1
            word_start = True
            continue
        before = len(stack)
        i = _plain_step(text, i, stack)
        word_start = len(stack) > before and stack[-1].kind in _COMMAND_FRAMES
    if case_seen:
        return "case"
    return _where(stack)


def _quoted_step(text: str, i: int, top: _Frame, stack: list[_Frame]) -> int:
    """Consume one token inside a quote or arithmetic (``top``); the index after it."""
    c = text[i]
    if top.kind == "'":
        if c == "'":
            stack.pop()
        return i + 1
    if top.kind == "$'":
        if c == "\\":
            top.escaped = top.escaped or text.startswith("'", i + 1)
            return i + 2
        if c == "'":
            stack.pop()
        return i + 1
    if top.kind == '"':
        if c == "\\":
            return i + 2
        if c == '"':
            stack.pop()
            return i + 1
        if c in "$`":
            return _open_expansion(text, i, stack)
        return i + 1
    # arithmetic: parentheses nest, '))' ends it; quotes and expansions as unquoted
    if c == "(":
        top.depth += 1
    elif c == ")" and top.depth:
        top.depth -= 1
    elif c == ")":
        stack.pop()
        return i + 2
    elif c in "'\"`$\\":
        return _plain_step(text, i, stack)
    return i + 1


def _plain_step(text: str, i: int, stack: list[_Frame]) -> int:
    """Consume one unquoted token starting at ``text[i]``; the index after it."""
    c = text[i]
    if c == "\\":
        return i + 2
    if c in "'\"":
        stack.append(_Frame(c))
        return i + 1
    if text.startswith("$'", i):
        stack.append(_Frame("$'"))
        return i + 2
    if text.startswith('$"', i):  # bash's translated string: a double-quoted one
        stack.append(_Frame('"'))
        return i + 2
    if c in "$`":
        return _open_expansion(text, i, stack)
    return i + 1


def _open_expansion(text: str, i: int, stack: list[_Frame]) -> int:
    """Consume a backtick, ``$((``, ``$(``, ``${``, ``$#``-like parameters or ``$``."""
    if text[i] == "`":
        stack.append(_Frame("`"))
        return i + 1
    for opener, kind in (("$((", "(("), ("$(", "$("), ("${", "${")):
        if text.startswith(opener, i):
            stack.append(_Frame(kind))
            return i + len(opener)
    if text[i + 1 : i + 2] in tuple("#?$!@*-0123456789"):  # $# is not a comment
        return i + 2
    return i + 1


def _comment_end(text: str, i: int, kind: str) -> int:
    """Where a comment starting at ``text[i]`` ends: a newline (or, inside backticks, the
    closing backtick, as the shell finds that before it parses what is inside)."""
    ends = [text.find("\n", i)] + ([text.find("`", i)] if kind == "`" else [])
    return min((e for e in ends if e != -1), default=len(text))


def _word_at(text: str, i: int) -> str:
    end = i
    while end < len(text) and text[end] not in _BREAKS:
        end += 1
    return text[i:end]


def _where(stack: list[_Frame]) -> Where:
    if any(f.kind == "((" for f in stack):
        return "arith"
    kind = stack[-1].kind if stack else ""
    if kind == "'":
        return "single"
    if kind == "$'":
        return "ansi-escaped" if stack[-1].escaped else "ansi"
    if kind == '"':
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
    if where == "ansi":
        return "'" + "'" + text.replace("'", "'\\''") + "'" + "$'"
    if where == "comment":
        return shlex.quote(text.replace("\r", " ").replace("\n", " "))
    if where == "arith" and _INTEGER.fullmatch(text):  # a plain number is only a number
        return text
    raise UnsafeReference(_REFUSALS[where])


def rendered_forms(text: str) -> set[str]:
    """Every text :func:`quote_for` can write ``text`` as (the raw text included)."""
    contexts: tuple[Where, ...] = ("plain", "double", "single", "ansi", "comment")
    return {text} | {quote_for(where, text) for where in contexts}
