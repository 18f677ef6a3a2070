"""Exit codes and turning errors into one clear message (no traceback for user mistakes).

The core speaks the library's language; this is where its errors meet the command line:
:func:`exit_code_for` picks the exit code and :func:`cli_message` names flags instead of the
library's keyword arguments.
"""

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
from enum import IntEnum
from typing import Any, TypeVar

import click

from ..errors import (
    ConfigError,
    ExecutorError,
    Interrupted,
    LockError,
    NotFoundError,
    OpusError,
    StateError,
    ValidationErrors,
)


class ExitCode(IntEnum):
    """What an ``opus`` exit status means (docs/cli.md, "Exit codes")."""

    #: Everything asked for was done (``plan``/``drift``: and nothing would change or drifted).
    OK = 0
    #: A task failed (it was rolled back where it could be, its dependents skipped), or an
    #: unexpected error (a bug): one line, the traceback with ``-v``.
    FAILED = 1
    #: Bad input or usage: a manifest, value, option, configuration, plugin choice or name.
    #: Fix what was given; nothing ran.
    USAGE = 2
    #: ``plan`` found changes, ``drift`` found drift.
    CHANGES = 3
    #: opus could not do its job although the input may be fine: the state backend failed
    #: (unreachable, corrupt, of a newer schema), the context is locked by another run, or the
    #: executor failed (scheduler unreachable, extra not installed). Retrying may help.
    UNAVAILABLE = 4
    #: Interrupted by Ctrl-C or SIGTERM.
    INTERRUPTED = 130


# The names the command modules use.
EXIT_OK = ExitCode.OK
EXIT_FAILED = ExitCode.FAILED
EXIT_USAGE = ExitCode.USAGE
EXIT_CHANGES = ExitCode.CHANGES
EXIT_UNAVAILABLE = ExitCode.UNAVAILABLE
EXIT_INTERRUPTED = ExitCode.INTERRUPTED

#: Errors of the state backend and the executor: opus could not do its job.
_UNAVAILABLE = (StateError, ExecutorError)
#: ... except these, which say the input was wrong (a malformed state URL or executor, a
#: migration into a used backend, a task or run that is not in state).
_BAD_INPUT = (ConfigError, NotFoundError)

#: How the CLI names each library argument an error may name (``OpusError.argument``).
FLAGS = {
    "variables": "--var or --values",
    "pairs": "--var",
    "targets": "--target",
    "excludes": "--exclude",
    "lock_timeout": "--lock-timeout",
}


def exit_code_for(exc: OpusError) -> ExitCode:
    """The exit code for an :class:`OpusError` that ends a command."""
    if isinstance(exc, Interrupted):
        return ExitCode.INTERRUPTED
    if isinstance(exc, _UNAVAILABLE) and not isinstance(exc, _BAD_INPUT):
        return ExitCode.UNAVAILABLE
    return ExitCode.USAGE


def cli_message(exc: OpusError) -> str:
    """The message of ``exc`` as the CLI shows it: flags instead of library arguments."""
    if isinstance(exc, ValidationErrors):
        return ValidationErrors.join([cli_message(e) for e in exc.errors])
    if isinstance(exc, LockError) and exc.context is not None:
        return (
            f"context {exc.context!r} is locked by {exc.holder}; use --lock-timeout to wait, "
            f"or 'opus state unlock --context {exc.context}' if that run is gone"
        )
    text = str(exc)
    if exc.argument in FLAGS:
        text = text.replace(f"{exc.argument}=", FLAGS[exc.argument])
    return text


F = TypeVar("F", bound=Callable[..., Any])


def _verbose() -> bool:
    return logging.getLogger("opus").isEnabledFor(logging.INFO)


@contextlib.contextmanager
def error_boundary() -> Iterator[None]:
    """Print an :class:`OpusError` as ``error: ...`` and exit with :func:`exit_code_for` (2
    for bad input, 4 when opus could not do its job); Ctrl-C exits 130; anything else is
    reported in one line with a hint (the traceback with ``-v``) and exits 1.

    click's own exits and usage errors (exit 2) pass through.
    """
    try:
        yield
    except OpusError as exc:
        code = exit_code_for(exc)
        cause = exc.__cause__
        if _verbose() and cause is not None and not isinstance(cause, OpusError):
            # a plugin's own failure (it could not be imported or built): where, with -v
            click.echo("".join(traceback.format_exception(cause)).rstrip(), err=True)
        _json_error(cli_message(exc), code)
        click.echo(f"error: {cli_message(exc)}", err=True)
        sys.exit(code)
    except click.UsageError as exc:
        _json_error(exc.format_message(), exc.exit_code, exc.ctx)
        raise
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        if any(t.name.startswith("opus-task") for t in threading.enumerate()):
            # task threads may never end (a hung processor): do not join them at exit
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(ExitCode.INTERRUPTED)
        sys.exit(ExitCode.INTERRUPTED)
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
        sys.exit(ExitCode.FAILED)


def _json_error(message: str, code: int, ctx: click.Context | None = None) -> None:
    """With ``--output json``, stdout gets ``{"ok": false, "error": ..., "exit_code": N}``
    too, so a script reading stdout always gets one JSON object (a usage error found
    before ``--output`` was read cannot know, and prints only the usage message)."""
    ctx = ctx or click.get_current_context(silent=True)
    while ctx is not None and "output" not in ctx.params:
        ctx = ctx.parent
    if ctx is not None and ctx.params.get("output") == "json":
        _error_on_stdout("json", message, code)


def _error_on_stdout(output: str | None, message: str, code: int) -> None:
    """The error as ``-o json`` (an ``{"ok": false, ...}`` object) or ``-o ndjson`` (an
    ``error`` event) writes it on stdout; nothing for other outputs."""
    if output == "json":
        click.echo(json.dumps({"ok": False, "error": message, "exit_code": code}))
    elif output == "ndjson":
        from .events import EventStream

        EventStream().error(message, code)


def output_in(args: list[str]) -> str | None:
    """The ``-o``/``--output`` value among a subcommand's unparsed ``args`` (the last one)."""
    found = None
    it = iter(args)
    for arg in it:
        if arg == "--":
            break
        if arg in ("-o", "--output"):
            found = next(it, None)
        elif arg.startswith("--output="):
            found = arg.partition("=")[2]
        elif arg.startswith("-o") and not arg.startswith("--"):
            found = arg[2:]
    return found


def early_error(exc: OpusError, args: list[str]) -> None:
    """Report ``exc``, raised before the subcommand's options were parsed (a plugin that
    fails to load while the command is looked up), on stdout too when ``args`` ask for
    ``-o json`` (an ``{"ok": false, ...}`` object) or ``-o ndjson`` (an ``error`` event),
    as for any other run that could not start."""
    _error_on_stdout(output_in(args), cli_message(exc), exit_code_for(exc))


def handle_errors(func: F) -> F:
    """Run a command callback inside :func:`error_boundary`."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with error_boundary():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
