"""opus-file: the ``file/v1`` processor (files with content and mode, and directories).

The processor and its helpers are imported on first use: loading this plugin (which every
``opus`` command does) stays cheap, and ``file/v1`` code loads only when a task uses it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opus import LazyProcessor, hookimpl
from opus.lazyload import lazy_exports

if TYPE_CHECKING:
    from .backup import BackupStore
    from .processor import FileProcessor
    from .spec import SPEC_SCHEMA, FileSpec
    from .template import TemplateError, render

_EXPORTS = {
    "BackupStore": ".backup",
    "FileProcessor": ".processor",
    "FileSpec": ".spec",
    "SPEC_SCHEMA": ".spec",
    "TemplateError": ".template",
    "render": ".template",
}

__all__ = [
    "BackupStore",
    "FileProcessor",
    "FileSpec",
    "SPEC_SCHEMA",
    "TemplateError",
    "render",
]


__getattr__ = lazy_exports(__name__, _EXPORTS)


@hookimpl
def opus_register_processors() -> list[LazyProcessor]:
    """Register :class:`FileProcessor` for ``apiVersion: file/v1`` (loaded on first use)."""
    return [LazyProcessor("file/v1", "opus_file.processor:FileProcessor")]
