"""Builtin plugin: ``memory://``, ``sqlite:///`` and ``postgresql://`` state backends."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..hookspecs import hookimpl

if TYPE_CHECKING:
    from ..state.base import StateBackend


@hookimpl(trylast=True)
def opus_state_schemes() -> list[str]:
    return ["memory", "sqlite", "postgresql", "postgres"]


@hookimpl(trylast=True)
def opus_state_backend(url: str) -> StateBackend | None:
    scheme = url.split(":", 1)[0].lower()
    if scheme == "memory":
        from ..state.memory import MemoryStateBackend

        return MemoryStateBackend(url)
    if scheme == "sqlite":
        from ..state.sqlite import SQLiteStateBackend

        return SQLiteStateBackend(url)
    if scheme in ("postgresql", "postgres"):
        from ..state.postgres import PostgresStateBackend

        return PostgresStateBackend(url)
    return None
