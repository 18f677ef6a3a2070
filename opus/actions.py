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


class Status(StrEnum):
    """How a task ended in a run."""

    DONE = "done"
    UNCHANGED = "unchanged"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    SKIPPED = "skipped"
    PLANNED = "planned"


def plain(value: str) -> str:
    """``value`` as a plain ``str``: an :class:`Action` or :class:`Status` gives its value
    (one shared string, where ``str()`` would make a new one each time)."""
    return value._value_ if isinstance(value, (Action, Status)) else str(value)
