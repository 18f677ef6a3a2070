"""opus-shell: the ``shell/v1`` processor (commands per action, with timeouts and secrets).

The processor and its helpers are imported on first use: loading this plugin (which every
``opus`` command does) stays cheap, and ``shell/v1`` code loads only when a task uses it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opus import LazyProcessor, hookimpl
from opus.lazyload import lazy_exports

if TYPE_CHECKING:
    from .processor import ShellCommandError, ShellProcessor
    from .redaction import MASK, Redactor
    from .spec import SPEC_SCHEMA, ShellSpec, redact_spec

_EXPORTS = {
    "MASK": ".redaction",
    "Redactor": ".redaction",
    "SPEC_SCHEMA": ".spec",
    "ShellCommandError": ".processor",
    "ShellProcessor": ".processor",
    "ShellSpec": ".spec",
    "redact_spec": ".spec",
}

__all__ = [
    "MASK",
    "Redactor",
    "SPEC_SCHEMA",
    "ShellCommandError",
    "ShellProcessor",
    "ShellSpec",
    "redact_spec",
]


__getattr__ = lazy_exports(__name__, _EXPORTS)


@hookimpl
def opus_register_processors() -> list[LazyProcessor]:
    """Register :class:`ShellProcessor` for ``apiVersion: shell/v1`` (loaded on first use)."""
    return [LazyProcessor("shell/v1", "opus_shell.processor:ShellProcessor")]
