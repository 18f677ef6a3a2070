"""opus-shell: the ``shell/v1`` processor (commands per action, with timeouts and secrets).

The processor and its helpers are imported on first use: loading this plugin (which every
``opus`` command does) stays cheap, and ``shell/v1`` code loads only when a task uses it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from opus import LazyProcessor, hookimpl

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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


@hookimpl
def opus_register_processors() -> list[LazyProcessor]:
    """Register :class:`ShellProcessor` for ``apiVersion: shell/v1`` (loaded on first use)."""
    return [LazyProcessor("shell/v1", "opus_shell.processor:ShellProcessor")]
