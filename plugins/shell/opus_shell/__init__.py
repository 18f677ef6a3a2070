"""opus-shell: the ``shell/v1`` processor (commands per action, with timeouts and secrets)."""

from __future__ import annotations

from opus import hookimpl

from .processor import ShellCommandError, ShellProcessor
from .redaction import MASK, Redactor
from .spec import SPEC_SCHEMA, ShellSpec, redact_spec

__all__ = [
    "MASK",
    "SPEC_SCHEMA",
    "Redactor",
    "ShellCommandError",
    "ShellProcessor",
    "ShellSpec",
    "redact_spec",
]


@hookimpl
def opus_register_processors() -> list[type[ShellProcessor]]:
    """Register :class:`ShellProcessor` for ``apiVersion: shell/v1``."""
    return [ShellProcessor]
