"""Exit codes and turning errors into one clear message (no traceback for user mistakes)."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import click

from ..errors import OpusError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CHANGES = 3
EXIT_INTERRUPTED = 130

F = TypeVar("F", bound=Callable[..., Any])


def _verbose() -> bool:
    return logging.getLogger("opus").isEnabledFor(logging.INFO)


@contextlib.contextmanager
def error_boundary() -> Iterator[None]:
    """Print an :class:`OpusError` as ``error: ...`` and exit 2; Ctrl-C exits 130; anything
    else is reported in one line with a hint (the traceback with ``-v``) and exits 1.

    click's own exits and usage errors (exit 2) pass through.
    """
    try:
        yield
    except OpusError as exc:
        _json_error(str(exc), EXIT_USAGE)
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    except click.UsageError as exc:
        _json_error(exc.format_message(), exc.exit_code, exc.ctx)
        raise
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        if any(t.name.startswith("opus-task") for t in threading.enumerate()):
            # task threads may never end (a hung processor): do not join them at exit
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(EXIT_INTERRUPTED)
        sys.exit(EXIT_INTERRUPTED)
    except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
        raise
    except Exception as exc:
        if _verbose():
            click.echo("".join(traceback.format_exception(exc)).rstrip(), err=True)
        click.echo(f"unexpected error: {type(exc).__name__}: {exc}", err=True)
        if not _verbose():
            click.echo(
                "(a bug or an environment problem; rerun with -v for the traceback)", err=True
            )
        sys.exit(EXIT_FAILED)


def _json_error(message: str, code: int, ctx: click.Context | None = None) -> None:
    """With ``--output json``, stdout gets ``{"ok": false, "error": ..., "exit_code": N}``
    too, so a script reading stdout always gets one JSON object (a usage error found
    before ``--output`` was read cannot know, and prints only the usage message)."""
    ctx = ctx or click.get_current_context(silent=True)
    while ctx is not None and "output" not in ctx.params:
        ctx = ctx.parent
    if ctx is None or ctx.params.get("output") != "json":
        return
    click.echo(json.dumps({"ok": False, "error": message, "exit_code": code}))


def handle_errors(func: F) -> F:
    """Run a command callback inside :func:`error_boundary`."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with error_boundary():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
