"""opus-http: the ``http/v1`` processor (downloads and endpoint calls, stdlib only).

The processor and its helpers are imported on first use: loading this plugin (which every
``opus`` command does) stays cheap, and ``http/v1`` code loads only when a task uses it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opus import LazyProcessor, hookimpl
from opus.lazyload import lazy_exports

if TYPE_CHECKING:
    from .client import HttpRequestError, Request, Response, send
    from .processor import HttpProcessor, HttpTaskError
    from .spec import SPEC_SCHEMA, HttpSpec, redact_spec

_EXPORTS = {
    "HttpProcessor": ".processor",
    "HttpRequestError": ".client",
    "HttpSpec": ".spec",
    "HttpTaskError": ".processor",
    "Request": ".client",
    "Response": ".client",
    "SPEC_SCHEMA": ".spec",
    "redact_spec": ".spec",
    "send": ".client",
}

__all__ = [
    "HttpProcessor",
    "HttpRequestError",
    "HttpSpec",
    "HttpTaskError",
    "Request",
    "Response",
    "SPEC_SCHEMA",
    "redact_spec",
    "send",
]


__getattr__ = lazy_exports(__name__, _EXPORTS)


@hookimpl
def opus_register_processors() -> list[LazyProcessor]:
    """Register :class:`HttpProcessor` for ``apiVersion: http/v1`` (loaded on first use)."""
    return [LazyProcessor("http/v1", "opus_http.processor:HttpProcessor")]
