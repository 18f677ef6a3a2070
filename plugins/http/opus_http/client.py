"""HTTP requests with retries and backoff, on ``urllib.request`` only.

Safety rules (see docs/security.md): credentials (sensitive headers) are never sent to another
origin than the one they were written for — a redirect to another scheme, host or port drops
them; bodies kept in memory are bounded (``max_body``); only transient failures are retried
(connection errors, timeouts and :data:`RETRY_STATUSES`); error bodies are quoted short.
"""

from __future__ import annotations

import html
import http.client
import logging
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, BinaryIO
from urllib.parse import urlsplit

from .deadline import Deadline, deadline_handlers

if TYPE_CHECKING:
    from opus import Cancellation

logger = logging.getLogger(__name__)

#: Response headers kept in outputs.
KEPT_HEADERS = ("content-type", "etag", "content-length", "last-modified")
MAX_BACKOFF = 30.0
CHUNK = 64 * 1024
#: Statuses worth another attempt; any other unexpected status fails at once.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
#: Header names whose values are credentials (compared lower-case), dropped across origins.
ALWAYS_SENSITIVE = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})
#: Bytes of an error response read to quote in the message.
ERROR_BODY_LIMIT = 64 * 1024
#: Characters of an error body quoted in a message.
SNIPPET = 200


class HttpRequestError(Exception):
    """A request failed for good (after retries); ``status`` is set for HTTP errors."""

    def __init__(self, message: str, status: int | None = None, body: bytes = b"") -> None:
        self.status, self.body = status, body
        super().__init__(message)


class _Retryable(Exception):
    """An attempt failed in a way worth retrying."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes = b""
    size: int = 0
    attempts: int = 1

    def kept_headers(self) -> dict[str, str]:
        return {name: self.headers[name] for name in KEPT_HEADERS if name in self.headers}


@dataclass(frozen=True)
class Request:
    """One HTTP request and the statuses that count as success."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    data: bytes | None = None
    expect_status: tuple[int, ...] = ()  # empty: any 2xx
    #: Extra header names (lower-case) holding credentials, besides :data:`ALWAYS_SENSITIVE`.
    sensitive: frozenset[str] = frozenset()

    def accepts(self, status: int) -> bool:
        return status in self.expect_status if self.expect_status else 200 <= status < 300


def send(
    request: Request,
    *,
    retries: int = 3,
    backoff: float = 0.5,
    timeout: float = 30.0,
    sink: Callable[[], BinaryIO] | None = None,
    describe: Callable[[str], str] = lambda text: text,
    max_body: int | None = None,
    cancelled: Cancellation | None = None,
) -> Response:
    """Send ``request``; retry connection errors, timeouts and :data:`RETRY_STATUSES`.

    With ``sink`` the body is streamed into the file it returns (called once per attempt)
    instead of being kept in memory. A body over ``max_body`` bytes fails the request (no
    retry). ``timeout`` bounds each whole attempt (connecting, headers and body); when
    ``cancelled`` is set the attempt stops at once and nothing is retried. ``describe``
    masks secrets in messages.
    """
    attempts = retries + 1
    for attempt in range(1, attempts + 1):
        if cancelled is not None and cancelled.is_set():
            raise HttpRequestError(f"{request.method} {describe(request.url)}: cancelled")
        try:
            response = _attempt(request, timeout, sink, max_body, cancelled)
            return Response(
                response.status, response.headers, response.body, response.size, attempt
            )
        except _Retryable as exc:
            if attempt == attempts:
                raise HttpRequestError(
                    f"{request.method} {describe(request.url)} failed after {attempts} "
                    f"attempt(s): {describe(str(exc))}",
                    status=getattr(exc, "status", None),
                ) from None
            delay = min(backoff * 2 ** (attempt - 1), MAX_BACKOFF)
            logger.warning(
                "%s %s: %s; retry %d/%d in %.2fs",
                request.method,
                describe(request.url),
                describe(str(exc)),
                attempt,
                retries,
                delay,
            )
            if cancelled is not None:
                cancelled.wait(delay)
            else:
                time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def _attempt(
    request: Request,
    timeout: float,
    sink: Callable[[], BinaryIO] | None,
    max_body: int | None,
    cancelled: Cancellation | None = None,
) -> Response:
    """One attempt, bounded as a whole by ``timeout`` (see :mod:`opus_http.deadline`)."""
    with Deadline(timeout, cancelled) as deadline:
        try:
            return _exchange(request, deadline, sink, max_body)
        except Exception:
            if deadline.reason is None:
                raise
        if deadline.reason == "cancelled":
            raise HttpRequestError(f"{request.method}: cancelled")
        raise _Retryable(f"{deadline.reason} (timeout bounds the whole attempt)")


def _exchange(
    request: Request, deadline: Deadline, sink: Callable[[], BinaryIO] | None, max_body: int | None
) -> Response:
    req = urllib.request.Request(
        request.url, data=request.data, headers=dict(request.headers), method=request.method
    )
    opener = urllib.request.build_opener(
        _SafeRedirects(ALWAYS_SENSITIVE | request.sensitive), *deadline_handlers(deadline)
    )
    try:
        with opener.open(req, timeout=deadline.seconds) as resp:
            status, headers = resp.status, {k.lower(): v for k, v in resp.headers.items()}
            if not request.accepts(status):
                body = resp.read(ERROR_BODY_LIMIT)
                raise HttpRequestError(
                    f"{request.method} {request.url}: unexpected status {status}"
                    f"{snippet(body, headers)}",
                    status=status,
                    body=body,
                )
            body, size = _read(resp, headers, sink, max_body, deadline)
            return Response(status, headers, body, size)
    except urllib.error.HTTPError as exc:
        status = exc.code
        headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
        if request.accepts(status):
            body, size = _read(exc, headers, None, max_body, deadline)
            return Response(status, headers, body, size)
        body = exc.read(ERROR_BODY_LIMIT) if exc.fp is not None else b""
        if status in RETRY_STATUSES:
            error = _Retryable(f"HTTP {status} {exc.reason}")
            error.status = status  # type: ignore[attr-defined]
            raise error from None
        raise HttpRequestError(
            f"{request.method} {request.url}: HTTP {status} {exc.reason}{snippet(body, headers)}",
            status=status,
            body=body,
        ) from None
    except urllib.error.URLError as exc:
        raise _Retryable(f"connection error: {exc.reason}") from None
    except (ConnectionError, TimeoutError, http.client.HTTPException) as exc:
        raise _Retryable(f"{type(exc).__name__}: {exc}") from None


def origin(url: str) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` with the scheme's default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


class _SafeRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects like urllib does, but never carries credentials to another origin."""

    def __init__(self, sensitive: frozenset[str]) -> None:
        self.sensitive = sensitive

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is None or origin(req.full_url) == origin(new.full_url):
            return new
        dropped = sorted(name for name in new.headers if name.lower() in self.sensitive)
        for name in dropped:
            del new.headers[name]
        if dropped:
            logger.info(
                "redirect to another origin (%s://%s): not sending %s",
                *origin(new.full_url)[:2],
                ", ".join(dropped),
            )
        return new


class BodyTooLarge(HttpRequestError):
    """A response body is larger than the configured maximum."""


def _read(
    resp: IO[bytes],
    headers: Mapping[str, str],
    sink: Callable[[], BinaryIO] | None,
    max_body: int | None,
    deadline: Deadline | None = None,
) -> tuple[bytes, int]:
    expected = headers.get("content-length")
    if max_body is not None and expected is not None and expected.isdigit():
        if int(expected) > max_body:
            raise _too_large(max_body, f"{expected} bytes announced")
    size = 0
    parts: list[bytes] = []
    out = sink() if sink is not None else None
    while chunk := resp.read(CHUNK):
        if deadline is not None and deadline.reason is not None:
            raise _Retryable(deadline.reason)
        size += len(chunk)
        if max_body is not None and size > max_body:
            raise _too_large(max_body, "more was sent")
        if out is not None:
            out.write(chunk)
        else:
            parts.append(chunk)
    if expected is not None and expected.isdigit() and int(expected) != size:
        raise _Retryable(f"truncated body: got {size} of {expected} bytes")
    return b"".join(parts), size


def _too_large(limit: int, what: str) -> BodyTooLarge:
    return BodyTooLarge(
        f"response body is larger than the limit of {limit} bytes ({what}); "
        "raise spec.maxBodyBytes if this is expected"
    )


_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
_HIDDEN = re.compile(r"<(script|style)[^>]*>.*?</\1>", re.IGNORECASE | re.DOTALL)


def snippet(body: bytes, headers: Mapping[str, str] | None = None, limit: int = SNIPPET) -> str:
    """``": <first words of body>"`` for an error message: one line, at most ``limit``
    characters; an HTML page is reduced to its title (or its text)."""
    text = body[: limit * 8].decode(errors="replace")
    content_type = (headers or {}).get("content-type", "").lower()
    if "html" in content_type or text.lstrip()[:1] == "<":
        title = _TITLE.search(text)
        text = title.group(1) if title else _TAG.sub(" ", _HIDDEN.sub(" ", text))
        text = html.unescape(text)
    text = " ".join(text.split())
    if not text:
        return ""
    return ": " + (text if len(text) <= limit else text[: limit - 3] + "...")
