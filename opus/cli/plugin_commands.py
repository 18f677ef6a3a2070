"""Subcommands added by plugins through the ``opus_cli_commands`` hook."""

from __future__ import annotations

import logging
from collections.abc import Collection

import click

from .session import Session

logger = logging.getLogger(__name__)


def plugin_commands(session: Session, reserved: Collection[str]) -> dict[str, click.Command]:
    """``{name: command}`` the loaded plugins add, collected once per session.

    Plugins add to a fresh group (never to the real ``opus`` group, so nothing leaks between
    invocations); a name opus already uses (``reserved``) is ignored with a warning.
    """
    if session.cli_commands is None:
        collector = click.Group("opus")
        session.plugins().add_cli_commands(collector)
        commands: dict[str, click.Command] = {}
        for name, command in collector.commands.items():
            if name in reserved:
                logger.warning("a plugin's command %r is ignored: opus already has one", name)
                continue
            commands[name] = command
        session.cli_commands = commands
    return session.cli_commands
