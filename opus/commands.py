"""Commands (what the user types) and actions (what opus does)."""

from __future__ import annotations

from .actions import COMMAND_ACTIONS, Action
from .errors import CommandError

#: Actions a command may map to (see :data:`opus.actions.COMMAND_ACTIONS`).
ACTIONS: tuple[str, ...] = COMMAND_ACTIONS

#: The default command map; plugins add or remap commands through ``opus_command_map``.
DEFAULT_COMMAND_MAP: dict[str, str] = {
    "create": "create",
    "update": "update",
    "delete": "delete",
    "describe": "describe",
    "drift": "detect_drift",
    "rollback": "rollback",
    "apply": "apply",
    "plan": "plan",
}

#: Actions that run the graph in reverse dependency order.
REVERSE_ACTIONS = frozenset({Action.DELETE})

#: Actions that change nothing, in state or in the world.
READ_ONLY_ACTIONS = frozenset({Action.PLAN, Action.DESCRIBE, Action.DETECT_DRIFT})


def check_action(command: str, action: str, owner: str) -> None:
    if action not in ACTIONS:
        raise CommandError(
            f"plugin {owner!r} maps command {command!r} to unknown action {action!r} "
            f"(actions: {', '.join(ACTIONS)})"
        )


def action_for(command: str, command_map: dict[str, str]) -> str:
    """The action ``command`` maps to; an unknown command lists the known ones."""
    try:
        return command_map[command]
    except KeyError:
        known = ", ".join(sorted(command_map))
        raise CommandError(f"unknown command {command!r} (known commands: {known})") from None
