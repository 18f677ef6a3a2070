"""opus plugin: ``hello-world/v1`` writes a file with the given content.

The processor is imported on first use: loading this plugin (which every ``opus`` command
does) stays cheap, and ``hello-world/v1`` code loads only when a task uses it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opus import LazyProcessor, hookimpl
from opus.lazyload import lazy_exports

if TYPE_CHECKING:
    from .processor import DEFAULT_CONTENT, HelloWorldProcessor

__version__ = "0.1.0"

_EXPORTS = {"DEFAULT_CONTENT": ".processor", "HelloWorldProcessor": ".processor"}

__all__ = ["DEFAULT_CONTENT", "HelloWorldProcessor"]


__getattr__ = lazy_exports(__name__, _EXPORTS)


@hookimpl
def opus_register_processors() -> list[LazyProcessor]:
    """Register :class:`HelloWorldProcessor` for ``apiVersion: hello-world/v1`` (loaded on
    first use)."""
    return [LazyProcessor("hello-world/v1", "opus_hello_world.processor:HelloWorldProcessor")]
