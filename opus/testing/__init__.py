"""A test kit for plugin authors (also a pytest plugin, entry point ``pytest11``: ``opus``).

- :func:`task_context`: a :class:`~opus.TaskContext` to call one action directly.
- :class:`ProcessorContract`: subclass it to check a processor's whole lifecycle.
- :class:`StateBackendContract`: subclass it to check a state backend.
- fixtures (from :mod:`opus.testing.plugin`, active once opus is installed):
  ``opus_workdir``, ``opus_state_url``, ``opus_engine``.

The contracts import pytest; they load only when used, so ``task_context`` works without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .context import task_context

if TYPE_CHECKING:
    from .processor_contract import ProcessorContract
    from .state_contract import StateBackendContract

__all__ = ["ProcessorContract", "StateBackendContract", "task_context"]


def __getattr__(name: str) -> Any:
    if name == "ProcessorContract":
        from .processor_contract import ProcessorContract

        return ProcessorContract
    if name == "StateBackendContract":
        from .state_contract import StateBackendContract

        return StateBackendContract
    raise AttributeError(f"module 'opus.testing' has no attribute {name!r}")
