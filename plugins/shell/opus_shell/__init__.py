"""opus-shell: the ``shell/v1`` processor (commands per action, with timeouts and secrets)."""

from __future__ import annotations

from opus import hookimpl

from .processor import ShellCommandError, ShellProcessor
from .redaction import MASK, Redactor
from .spec import ShellSpec, ShellSpecError, redact_spec

__all__ = [
    "MASK",
    "Redactor",
    "ShellCommandError",
    "ShellProcessor",
    "ShellSpec",
    "ShellSpecError",
    "redact_spec",
]


@hookimpl
def opus_register_processors() -> list[type[ShellProcessor]]:
    """Register :class:`ShellProcessor` for ``apiVersion: shell/v1``."""
    return [ShellProcessor]
