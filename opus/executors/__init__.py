"""Executors: where task actions run. ``local`` (threads) by default, ``dask`` as an extra."""

from __future__ import annotations

from ..errors import ExecutorConfigError
from .base import Executor, TaskFuture
from .local import ThreadExecutor


def make_executor(spec: str | Executor | None) -> Executor:
    """An executor from ``spec``: ``local``, ``dask`` (a LocalCluster) or ``dask://host:port``."""
    if isinstance(spec, Executor):
        return spec
    if spec is None or spec in ("", "local", "threads"):
        return ThreadExecutor()
    if spec == "dask" or spec.startswith(("dask://", "tcp://")):
        from .dask import DaskExecutor

        address = spec.split("://", 1)[1] if "://" in spec else None
        return DaskExecutor(address=address)
    raise ExecutorConfigError(f"unknown executor {spec!r} (use local, dask or dask://HOST:PORT)")


__all__ = ["Executor", "TaskFuture", "ThreadExecutor", "make_executor"]
