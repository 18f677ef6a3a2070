"""Names of actions and statuses (``StrEnum``: each compares equal to its string)."""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    """What opus does to a task (processor actions, plus the state-driven ones)."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    DESCRIBE = "describe"
    DETECT_DRIFT = "detect_drift"
    ROLLBACK = "rollback"
    APPLY = "apply"
    PLAN = "plan"
    #: delete the old resource (recorded spec), then create the new one
    REPLACE = "replace"
    #: adopt an existing resource (optional processor action)
    READ = "read"


#: The actions a processor can implement (as plain strings).
PROCESSOR_ACTIONS: tuple[str, ...] = tuple(
    a.value
    for a in (
        Action.CREATE,
        Action.UPDATE,
        Action.DELETE,
        Action.DESCRIBE,
        Action.DETECT_DRIFT,
        Action.ROLLBACK,
        Action.READ,
    )
)

#: Actions a command may map to: the processor actions a run drives (all but ``read``,
#: which only ``opus import`` uses) plus the state-driven ``apply`` and ``plan``.
COMMAND_ACTIONS: tuple[str, ...] = (
    *(a for a in PROCESSOR_ACTIONS if a != Action.READ),
    Action.APPLY.value,
    Action.PLAN.value,
)


class Status(StrEnum):
    """How a task ended in a run."""

    DONE = "done"
    UNCHANGED = "unchanged"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    SKIPPED = "skipped"
    PLANNED = "planned"


#: Each action and status (and its plain string) to the plain string: one lookup.
_PLAIN: dict[str, str] = {member: member.value for member in (*Action, *Status)}


def plain(value: str) -> str:
    """``value`` as a plain ``str``: an :class:`Action` or :class:`Status` gives its value
    (one shared string, where ``str()`` would make a new one each time)."""
    found = _PLAIN.get(value)
    return found if found is not None else str(value)
