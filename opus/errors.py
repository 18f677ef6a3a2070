"""The one exception hierarchy of opus.

Every error a user can cause by what they wrote (manifests, values, options) is an
:class:`OpusError`; the CLI prints it as one line and exits 2. Anything else is a bug or an
environment failure and is reported as such.
"""

from __future__ import annotations

from collections.abc import Iterable


class OpusError(Exception):
    """Base of every error opus raises on purpose."""


def describe_error(exc: BaseException) -> str:
    """One line for an error: the message of an OpusError, else ``Type: message``."""
    if isinstance(exc, OpusError):
        return str(exc)
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class ManifestError(OpusError):
    """A task manifest is malformed: names the file (and line), the task and the field."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        task: str | None = None,
        field: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.task = task
        self.field = field
        self.reason = message
        super().__init__(_locate(message, file=file, line=line, task=task, field=field))


def _locate(
    message: str,
    *,
    file: str | None,
    line: int | None,
    task: str | None,
    field: str | None,
) -> str:
    where = []
    if file:
        where.append(f"{file}:{line}" if line else file)
    if task:
        where.append(f"task {task!r}")
    if field:
        where.append(f"field {field!r}")
    return f"{', '.join(where)}: {message}" if where else message


class ValidationErrors(OpusError):
    """Several problems found at once; ``errors`` holds each of them."""

    def __init__(self, errors: Iterable[OpusError]) -> None:
        self.errors = list(errors)
        lines = [str(e) for e in self.errors]
        head = f"{len(lines)} problems found:" if len(lines) > 1 else ""
        super().__init__(
            "\n".join([head, *("  - " + line for line in lines)]) if head else lines[0]
        )


class GraphError(OpusError):
    """The dependency graph is invalid (unknown or out-of-scope dependency)."""


class CycleError(GraphError):
    """Tasks depend on each other in a circle; ``cycle`` lists every task on it."""

    def __init__(self, cycle: list[str]) -> None:
        self.cycle = cycle
        super().__init__(
            "dependency cycle: " + " -> ".join(cycle) + " (each task depends on the next)"
        )


class VariableError(OpusError):
    """A ``${...}`` reference cannot be resolved; names task, spec path and reference."""


class PluginError(OpusError):
    """A plugin could not be loaded, or plugins conflict."""


class CommandError(OpusError):
    """An unknown command or action."""


class NotSupportedError(OpusError):
    """A processor does not implement the requested action."""


class StateError(OpusError):
    """The state backend failed or its URL is invalid."""


class LockError(StateError):
    """The context is locked by another run."""


class ExecutorError(OpusError):
    """The executor could not run a task (bad address, unpicklable payload, ...)."""


class TaskTimeoutError(OpusError):
    """A task action ran over its time (``metadata.timeout`` or the engine's task timeout)."""


class ConfigError(OpusError):
    """A configuration file or option is invalid."""


class Interrupted(OpusError):
    """The run was interrupted (Ctrl-C / SIGTERM)."""
