"""Exit codes and turning errors into one clear line."""

from __future__ import annotations

import functools
import logging
import sys
from typing import Any, Callable, TypeVar

import click

from ..errors import OpusError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CHANGES = 3
EXIT_INTERRUPTED = 130

F = TypeVar("F", bound=Callable[..., Any])


def handle_errors(func: F) -> F:
    """Print an :class:`OpusError` as ``error: ...`` and exit 2; other errors briefly (1)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except OpusError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_USAGE)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as exc:
            verbose = logging.getLogger("opus").isEnabledFor(logging.DEBUG)
            if verbose:
                logging.getLogger("opus").exception("unexpected error")
            else:
                click.echo(
                    f"unexpected error: {type(exc).__name__}: {exc}\n"
                    "(this is a bug or an environment problem; rerun with -v for the traceback)",
                    err=True,
                )
            sys.exit(EXIT_FAILED)

    return wrapper  # type: ignore[return-value]
