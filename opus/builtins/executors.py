"""Builtin plugin: the ``local`` (threads) and ``dask`` executors."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..hookspecs import hookimpl

if TYPE_CHECKING:
    from ..executors.base import Executor


@hookimpl(trylast=True)
def opus_executor(url: str) -> Executor | None:
    if url in ("", "local", "threads"):
        from ..executors.local import ThreadExecutor

        return ThreadExecutor()
    if url == "dask" or url.startswith(("dask://", "tcp://")):
        from ..executors.dask import DaskExecutor

        return DaskExecutor(address=url.split("://", 1)[1] if "://" in url else None)
    return None
