"""Writing referenced values into ``http/v1`` URLs and headers as data.

The core resolves ``${...}`` references in the spec; ``HttpProcessor.render_reference`` asks
:func:`render_in_url` how to write each value that stands inside a URL string, so that no value
can move a request (and the credentials in its headers) to another origin:

- a reference at the very start of the URL (``"${VAR:base}"``, ``"${VAR:base}/items"``) gives
  the origin, as configured: its value must itself start with ``http(s)://host``;
- a reference in the scheme is refused;
- in the authority, a value may hold only host characters (letters, digits, ``-``, ``.``,
  optionally ``:port`` or an ``[IPv6]`` literal) where the host stands, only digits after the
  template's ``:`` (the port), and is percent-encoded in ``user:password@`` (then sent as
  Basic auth); anything else fails the task;
- in the path a value is percent-encoded except ``/``: once the authority has ended a ``/``
  only adds path segments on the same server, it cannot change scheme, host or port;
- in the query and fragment a value is percent-encoded entirely (``&``, ``=``, ``#`` too), so
  it stays one piece of data.

After a leading reference the authority is taken as still open until a literal ``/``, ``?``
or ``#`` of the template: ``"${VAR:base}${VAR:path}"`` treats ``path`` as part of the host.

Header values (:func:`check_header_value`) may not hold CR, LF or NUL, whatever their source.
"""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import quote

from opus.variables import render_text

Part = Literal["origin", "scheme", "userinfo", "host", "port", "path", "query", "fragment"]

#: A reference in a spec string (as the core matches it).
_REFERENCE = re.compile(r"\$\{[A-Za-z][A-Za-z0-9_]*:[^}]*\}")
_ORIGIN = re.compile(r"[Hh][Tt][Tt][Pp][Ss]?://[^/?#\s\\]+")
_HOST = re.compile(r"(?:[A-Za-z0-9.-]*|\[[0-9A-Fa-f:.]+\])(?::[0-9]*)?")
_PORT = re.compile(r"[0-9]*")
_HEADER_BREAKS = re.compile(r"[\r\n\x00]")


class UnsafeReference(ValueError):
    """A referenced value could change where a request goes, or break a header."""


def part_at(text: str, start: int) -> Part:
    """The URL component in which the reference at ``text[start]`` stands.

    Other references in ``text`` count as opaque: they could hold anything but ``/?#``
    literals of the template still end the authority.
    """
    if start == 0:
        return "origin"
    skeleton = _REFERENCE.sub(lambda m: "\0" * len(m.group()), text)
    if skeleton.startswith("\0"):  # the origin comes from a leading reference
        lead = _REFERENCE.match(text)
        assert lead is not None
        authority_start = lead.end()
    else:
        scheme_end = skeleton.find("://")
        if scheme_end < 0 or start < scheme_end + 3:
            return "scheme"
        authority_start = scheme_end + 3
    ends = [i for i in (skeleton.find(c, authority_start) for c in "/?#") if i >= 0]
    authority_end = min(ends, default=len(skeleton))
    if start >= authority_end:
        first = skeleton[authority_end]
        if first == "/":
            query = [i for i in (skeleton.find(c, authority_end) for c in "?#") if i >= 0]
            if not query or start < min(query):
                return "path"
            first = skeleton[min(query)]
            authority_end = min(query)
        if first == "?":
            fragment = skeleton.find("#", authority_end)
            return "query" if fragment < 0 or start < fragment else "fragment"
        return "fragment"
    authority = skeleton[authority_start:authority_end]
    at = start - authority_start
    if "@" in authority[at:]:
        return "userinfo"
    host_start = authority.rfind("@", 0, at) + 1
    host = authority[host_start:at]
    if ":" in host.replace("\0", "") and not (host.startswith("[") and "]" not in host):
        return "port"
    return "host"


def render_in_url(text: str, start: int, value: Any) -> str | None:
    """The text to write for the reference at ``text[start]`` of a URL template, or ``None``
    for the core's default (a leading reference: the value as configured).

    Raises :class:`UnsafeReference` for a value that would change the scheme, host or port.
    """
    part = part_at(text, start)
    value_text = render_text(value)
    if part == "origin":
        if start == 0 and _REFERENCE.fullmatch(text):
            return None
        if not _ORIGIN.match(value_text):
            raise UnsafeReference(
                "a reference at the start of the url gives its origin, so its value must "
                f"start with http:// or https:// and a host (got {_describe(value_text)})"
            )
        return None
    if part == "scheme":
        raise UnsafeReference("a reference may not stand in the url's scheme")
    if part == "host" and not _HOST.fullmatch(value_text):
        raise UnsafeReference(
            "a value in the url's host may hold only letters, digits, '-', '.' and ':port' "
            f"(got {_describe(value_text)})"
        )
    if part == "port" and not _PORT.fullmatch(value_text):
        raise UnsafeReference(
            f"a value in the url's port may hold only digits (got {_describe(value_text)})"
        )
    if part in ("host", "port"):
        return value_text
    return quote(value_text, safe="/" if part == "path" else "")


def check_header_value(value: Any) -> None:
    """Refuse a header value holding CR, LF or NUL (it could add headers or end the head)."""
    if _HEADER_BREAKS.search(render_text(value)):
        raise UnsafeReference("a header value may not contain CR, LF or NUL characters")


def _describe(value: str) -> str:
    """How an offending value is quoted in a message: its kind, not its content (it may be
    a secret)."""
    bad = sorted({c for c in value if not (c.isalnum() or c in "-.")})
    shown = ", ".join(repr(c) for c in bad[:6])
    return f"a value of {len(value)} characters" + (f" containing {shown}" if bad else "")
