"""HTTP requests with retries and backoff, on ``urllib.request`` only."""

from __future__ import annotations

import http.client
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import BinaryIO

logger = logging.getLogger(__name__)

#: Response headers kept in outputs.
KEPT_HEADERS = ("content-type", "etag", "content-length", "last-modified")
MAX_BACKOFF = 30.0
CHUNK = 64 * 1024


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
) -> Response:
    """Send ``request``; retry connection errors, timeouts, 5xx and 429 with backoff.

    With ``sink`` the body is streamed into the file it returns (called once per attempt)
    instead of being kept in memory. ``describe`` masks secrets in messages.
    """
    attempts = retries + 1
    for attempt in range(1, attempts + 1):
        try:
            response = _attempt(request, timeout, sink)
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
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def _attempt(request: Request, timeout: float, sink: Callable[[], BinaryIO] | None) -> Response:
    req = urllib.request.Request(
        request.url, data=request.data, headers=dict(request.headers), method=request.method
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, headers = resp.status, {k.lower(): v for k, v in resp.headers.items()}
            if not request.accepts(status):
                body = resp.read()
                raise HttpRequestError(
                    f"{request.method} {request.url}: unexpected status {status}{_snippet(body)}",
                    status=status,
                    body=body,
                )
            body, size = _read(resp, headers, sink)
            return Response(status, headers, body, size)
    except urllib.error.HTTPError as exc:
        status = exc.code
        body = exc.read() if exc.fp is not None else b""
        headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
        if request.accepts(status):
            return Response(status, headers, body, len(body))
        if status >= 500 or status == 429:
            error = _Retryable(f"HTTP {status} {exc.reason}")
            error.status = status  # type: ignore[attr-defined]
            raise error from None
        raise HttpRequestError(
            f"{request.method} {request.url}: HTTP {status} {exc.reason}{_snippet(body)}",
            status=status,
            body=body,
        ) from None
    except urllib.error.URLError as exc:
        raise _Retryable(f"connection error: {exc.reason}") from None
    except (ConnectionError, TimeoutError, http.client.HTTPException) as exc:
        raise _Retryable(f"{type(exc).__name__}: {exc}") from None


def _read(resp: http.client.HTTPResponse, headers: Mapping[str, str], sink) -> tuple[bytes, int]:
    expected = headers.get("content-length")
    size = 0
    if sink is None:
        body = resp.read()
        size = len(body)
    else:
        body = b""
        out = sink()
        while chunk := resp.read(CHUNK):
            out.write(chunk)
            size += len(chunk)
    if expected is not None and expected.isdigit() and int(expected) != size:
        raise _Retryable(f"truncated body: got {size} of {expected} bytes")
    return body, size


def _snippet(body: bytes, limit: int = 300) -> str:
    text = body.decode(errors="replace").strip()
    if not text:
        return ""
    return ": " + (text if len(text) <= limit else text[:limit] + "...")
