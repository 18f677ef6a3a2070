"""The one exception hierarchy of opus.

Every error opus raises on purpose is an :class:`OpusError`. Most say the input is wrong
(manifests, values, options); :class:`StateError` and :class:`ExecutorError` say opus could
not do its job (the state backend, a context lock or the executor failed) -- except their
subclasses that are also a :class:`ConfigError` (a malformed state URL or executor) or a
:class:`NotFoundError`. The CLI chooses its exit code from that (``opus.cli.errors``).
"""

from __future__ import annotations

from collections.abc import Iterable


class OpusError(Exception):
    """Base of every error opus raises on purpose.

    ``argument`` names the keyword argument of the library that would fix the error
    (``variables``, ``targets``); the message spells it ``variables=``. A front end shows its own
    name for it instead (the CLI its flag, ``--var``).
    """

    argument: str | None = None

    def __init__(self, *args: object, argument: str | None = None) -> None:
        super().__init__(*args)
        if argument is not None:
            self.argument = argument


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
        super().__init__(self.join([str(e) for e in self.errors]))

    @staticmethod
    def join(lines: list[str]) -> str:
        """The message for several problems: a count line, then one ``  - `` line each."""
        head = f"{len(lines)} problems found:" if len(lines) > 1 else ""
        return "\n".join([head, *("  - " + line for line in lines)]) if head else lines[0]


class GraphError(OpusError):
    """The dependency graph is invalid (unknown or out-of-scope dependency)."""


class CycleError(GraphError):
    """Tasks depend on each other in a circle; ``cycle`` lists every task on it."""

    def __init__(self, cycle: list[str]) -> None:
        self.cycle = cycle
        super().__init__(
            "dependency cycle: " + " -> ".join(cycle) + " (each task depends on the next)"
        )


class SpecError(OpusError):
    """One place where a task's spec or metadata does not match its schema.

    ``file`` is where the task is written (``file:line``), ``path`` the spec path
    (``spec.env.HOME``), ``reason`` what is wrong there. Several are raised together as
    :class:`ValidationErrors`.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        task: str | None = None,
        path: str | None = None,
    ) -> None:
        self.file = file
        self.task = task
        self.path = path
        self.reason = message
        super().__init__(_locate(message, file=file, line=None, task=task, field=path))


class VariableError(OpusError):
    """A ``${...}`` reference cannot be resolved; names task, spec path and reference.

    ``variable`` is the name of a user variable that is not defined (else ``None``).
    """

    variable: str | None = None

    def __init__(
        self, *args: object, argument: str | None = None, variable: str | None = None
    ) -> None:
        super().__init__(*args, argument=argument)
        if variable is not None:
            self.variable = variable


class PluginError(OpusError):
    """A plugin could not be loaded, or plugins conflict."""


class CommandError(OpusError):
    """An unknown command or action."""


class NotSupportedError(OpusError):
    """A processor does not implement the requested action."""


class TaskTimeoutError(OpusError):
    """A task action ran over its time (``metadata.timeout`` or the engine's task timeout)."""


class ConfigError(OpusError):
    """A configuration file or option is invalid."""


class StateError(OpusError):
    """The state backend failed: unreachable, corrupt, of a newer schema, ..."""


class StateConfigError(StateError, ConfigError):
    """The state is asked for wrongly: a malformed or unknown state URL, a migration into a
    backend that already holds state. Bad input, unlike other :class:`StateError`\\s."""


class NotFoundError(StateError):
    """A task or run asked for by name is not in state, or a run id prefix is ambiguous.
    Bad input."""


class LockError(StateError):
    """The context is locked by another run; ``context`` and ``holder`` say which and whom."""

    def __init__(self, message: str, *, context: str | None = None, holder: str = "") -> None:
        super().__init__(message, argument="lock_timeout" if context is not None else None)
        self.context = context
        self.holder = holder

    @classmethod
    def held(cls, context: str, holder: str) -> LockError:
        """The error for a lock of ``context`` still held by ``holder`` after the timeout."""
        return cls(
            f"context {context!r} is locked by {holder}; pass lock_timeout= to wait, or call "
            f"unlock({context!r}) on the state backend if that run is gone",
            context=context,
            holder=holder,
        )


class ExecutorError(OpusError):
    """The executor could not run a task (scheduler unreachable, unpicklable payload, ...)."""


class ExecutorConfigError(ExecutorError, ConfigError):
    """The executor is asked for wrongly: an unknown name or a malformed address. Bad input."""


class Interrupted(OpusError):
    """The run was interrupted (Ctrl-C / SIGTERM)."""
