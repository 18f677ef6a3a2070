"""opus-file: the ``file/v1`` processor (files with content and mode, and directories).

The processor and its helpers are imported on first use: loading this plugin (which every
``opus`` command does) stays cheap, and ``file/v1`` code loads only when a task uses it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from opus import LazyProcessor, hookimpl

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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


@hookimpl
def opus_register_processors() -> list[LazyProcessor]:
    """Register :class:`FileProcessor` for ``apiVersion: file/v1`` (loaded on first use)."""
    return [LazyProcessor("file/v1", "opus_file.processor:FileProcessor")]
