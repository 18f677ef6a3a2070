"""A test kit for plugin authors (also a pytest plugin, entry point ``pytest11``: ``opus``).

- :func:`task_context`: a :class:`~opus.TaskContext` to call one action directly.
- :class:`ProcessorContract`: subclass it to check a processor's whole lifecycle.
- :class:`StateBackendContract`: subclass it to check a state backend.
- fixtures (from :mod:`opus.testing.plugin`, active once opus is installed):
  ``opus_workdir``, ``opus_state_url``, ``opus_engine``.

The contracts import pytest; they load only when used, so ``task_context`` works without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazyload import lazy_exports
from .context import task_context

if TYPE_CHECKING:
    from .processor_contract import ProcessorContract
    from .state_contract import StateBackendContract

__all__ = ["ProcessorContract", "StateBackendContract", "task_context"]


__getattr__ = lazy_exports(
    __name__,
    {"ProcessorContract": ".processor_contract", "StateBackendContract": ".state_contract"},
)
