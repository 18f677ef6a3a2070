"""opus-http: the ``http/v1`` processor (downloads and endpoint calls, stdlib only).

The processor and its helpers are imported on first use: loading this plugin (which every
``opus`` command does) stays cheap, and ``http/v1`` code loads only when a task uses it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from opus import LazyProcessor, hookimpl

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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


@hookimpl
def opus_register_processors() -> list[LazyProcessor]:
    """Register :class:`HttpProcessor` for ``apiVersion: http/v1`` (loaded on first use)."""
    return [LazyProcessor("http/v1", "opus_http.processor:HttpProcessor")]
