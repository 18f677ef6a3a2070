"""The ``opus`` command line. ``main()`` is the console-script entry point."""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING, Any

from ..collector import paused

if TYPE_CHECKING:
    from .app import cli

__all__ = ["cli", "main"]


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point.

    The command line's modules load with the cyclic garbage collector paused, and what they
    made (modules, classes, functions: tens of thousands of objects that live as long as the
    process, and no garbage) is then frozen out of its sight for good: otherwise the
    collector walks them again and again, while they load, during the command and once more
    when the interpreter exits (milliseconds of every command). A process calling ``main``
    ends with it (it raises :class:`SystemExit`).
    """
    with paused():
        try:
            from .app import main as run
        finally:
            gc.freeze()
    return run(argv)


def __getattr__(name: str) -> Any:
    """``cli`` (the click group), imported on first use (PEP 562)."""
    if name == "cli":
        from .app import cli

        return cli
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
