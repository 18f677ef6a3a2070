"""Builtin plugin: the default command map."""

from __future__ import annotations

from ..commands import DEFAULT_COMMAND_MAP
from ..hookspecs import hookimpl


@hookimpl(trylast=True)
def opus_command_map() -> dict[str, str]:
    return dict(DEFAULT_COMMAND_MAP)
