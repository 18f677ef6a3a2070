"""The ``opus`` command line. ``main()`` is the console-script entry point."""

from __future__ import annotations

from .app import cli, main

__all__ = ["cli", "main"]
