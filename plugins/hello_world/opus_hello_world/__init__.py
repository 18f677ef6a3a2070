"""opus plugin: ``hello-world/v1`` writes a file with the given content.

The processor is imported on first use: loading this plugin (which every ``opus`` command
does) stays cheap, and ``hello-world/v1`` code loads only when a task uses it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from opus import LazyProcessor, hookimpl

if TYPE_CHECKING:
    from .processor import DEFAULT_CONTENT, HelloWorldProcessor

__version__ = "0.1.0"

_EXPORTS = {"DEFAULT_CONTENT": ".processor", "HelloWorldProcessor": ".processor"}

__all__ = ["DEFAULT_CONTENT", "HelloWorldProcessor"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


@hookimpl
def opus_register_processors() -> list[LazyProcessor]:
    """Register :class:`HelloWorldProcessor` for ``apiVersion: hello-world/v1`` (loaded on
    first use)."""
    return [LazyProcessor("hello-world/v1", "opus_hello_world.processor:HelloWorldProcessor")]
