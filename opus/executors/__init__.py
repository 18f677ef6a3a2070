"""Executors: where task actions run. ``local`` (threads) by default, ``dask`` as an extra.

Executors are plugins (``opus_executor``); the builtin ones live in
:mod:`opus.builtins.executors`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Executor, TaskFuture
from .local import ThreadExecutor

if TYPE_CHECKING:
    from ..plugins import Plugins


def make_executor(spec: str | Executor | None, plugins: Plugins | None = None) -> Executor:
    """An executor from ``spec`` (an :class:`Executor`, or a URL asked of the plugins'
    ``opus_executor`` hook: ``local``, ``dask``, ``dask://host:port``, ...)."""
    if isinstance(spec, Executor):
        return spec
    if plugins is None:
        from ..plugins import Plugins

        plugins = Plugins()
    return plugins.executor(spec or "local")


__all__ = ["Executor", "TaskFuture", "ThreadExecutor", "make_executor"]
