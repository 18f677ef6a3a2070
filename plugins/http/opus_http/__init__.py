"""opus-http: the ``http/v1`` processor (downloads and endpoint calls, stdlib only)."""

from __future__ import annotations

from opus import hookimpl

from .client import HttpRequestError, Request, Response, send
from .processor import HttpProcessor, HttpTaskError
from .spec import SPEC_SCHEMA, HttpSpec, redact_spec

__all__ = [
    "HttpProcessor",
    "HttpRequestError",
    "HttpSpec",
    "SPEC_SCHEMA",
    "HttpTaskError",
    "Request",
    "Response",
    "redact_spec",
    "send",
]


@hookimpl
def opus_register_processors() -> list[type[HttpProcessor]]:
    """Register :class:`HttpProcessor` for ``apiVersion: http/v1``."""
    return [HttpProcessor]
