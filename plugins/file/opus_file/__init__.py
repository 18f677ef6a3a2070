"""opus-file: the ``file/v1`` processor (files with content and mode, and directories)."""

from __future__ import annotations

from opus import hookimpl

from .backup import BackupStore
from .processor import FileProcessor
from .spec import SPEC_SCHEMA, FileSpec
from .template import TemplateError, render

__all__ = [
    "SPEC_SCHEMA",
    "BackupStore",
    "FileProcessor",
    "FileSpec",
    "TemplateError",
    "render",
]


@hookimpl
def opus_register_processors() -> list[type[FileProcessor]]:
    """Register :class:`FileProcessor` for ``apiVersion: file/v1``."""
    return [FileProcessor]
