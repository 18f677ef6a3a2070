"""The processor contract: :class:`TaskProcessor`, :class:`TaskContext`."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from .actions import PROCESSOR_ACTIONS, plain
from .cancellation import Cancellation
from .errors import NotSupportedError
from .model import Result, Task, TaskState

if TYPE_CHECKING:
    from .variables import Placement


class ReadOnlyVariables(Mapping[str, Any]):
    """A read-only view of the variables visible to a task (picklable, unlike mappingproxy)."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        self._data = dict(data or {})

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"ReadOnlyVariables({self._data!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (ReadOnlyVariables, (self._data,))

    @classmethod
    def owning(cls, data: dict[str, Any]) -> ReadOnlyVariables:
        """A view of ``data`` itself, not a copy: for a dict made for this view alone."""
        view = object.__new__(cls)
        view._data = data
        return view


@dataclass(frozen=True)
class TaskContext:
    """Everything a processor action needs besides the task itself.

    ``spec`` is the spec the action acts on: the manifest's resolved spec for ``create``,
    ``update``, ``describe``, ``detect_drift`` from ``opus drift``; the spec recorded in
    state (what was applied) for ``delete``, for the refresh before ``apply``/``plan``, and
    for the ``rollback`` of an update. ``desired_spec`` is always the manifest's resolved
    spec (``None`` for an orphan). ``state`` is the task's previous record in this context
    (or ``None``); ``variables`` every variable visible to this task (read-only). For
    ``rollback``, ``failed_action`` and ``error`` say what is being undone.
    """

    task_name: str
    spec: Mapping[str, Any]
    command: str
    context: str
    action: str
    run_id: str
    state: TaskState | None = None
    variables: Mapping[str, Any] = field(default_factory=ReadOnlyVariables)
    failed_action: str | None = None
    error: str | None = None
    desired_spec: Mapping[str, Any] | None = None
    #: Set when the core gives up on this action (timeout, second Ctrl-C): poll it, or
    #: register a callback that stops the work (see :mod:`opus.cancellation`).
    cancelled: Cancellation = field(default_factory=Cancellation, compare=False, repr=False)
    #: Secrets this task's spec holds that the core knows of (sensitive outputs of other
    #: tasks it refers to, see :mod:`opus.secret_refs`): mask them in what you log, raise
    #: and output, as you mask your own (``opus.masking.Masker``).
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        # plain strings for plugins (an Action compares equal, but reprs differently)
        object.__setattr__(self, "action", plain(self.action))
        if self.failed_action is not None:
            object.__setattr__(self, "failed_action", plain(self.failed_action))

    def is_cancelled(self) -> bool:
        """Whether the core cancelled this action (it timed out, or opus is exiting)."""
        return self.cancelled.is_set()

    @property
    def logger(self) -> logging.Logger:
        """A logger named ``opus.task.<task name>``."""
        return logging.getLogger(f"opus.task.{self.task_name}")

    @classmethod
    def for_task(
        cls,
        task_name: str,
        spec: Mapping[str, Any],
        command: str,
        context: str,
        action: str,
        run_id: str,
        state: TaskState | None,
        variables: dict[str, Any] | ReadOnlyVariables,
        desired_spec: Mapping[str, Any] | None = None,
    ) -> TaskContext:
        """``TaskContext(...)`` with these fields, ``desired_spec`` (default: ``spec``) and
        the rest defaults, made without the dataclass ``__init__`` (the driver makes one per
        task). ``variables`` is a dict made for this context (kept, not copied) or a
        read-only view (shared)."""
        view = ReadOnlyVariables.owning(variables) if isinstance(variables, dict) else variables
        made = object.__new__(cls)
        made.__dict__.update(
            task_name=task_name, spec=spec, command=command, context=context,
            action=plain(action), run_id=run_id, state=state,
            variables=view, failed_action=None, error=None,
            desired_spec=spec if desired_spec is None else desired_spec,
            cancelled=Cancellation(), secrets=(),
        )  # fmt: skip
        return made

    def evolve(self, **changes: Any) -> TaskContext:
        """A copy with ``changes`` (the same ``cancelled``): what ``dataclasses.replace``
        gives, at a fraction of its cost (the driver makes several per task)."""
        copy = object.__new__(type(self))
        fields = copy.__dict__
        fields.update(self.__dict__)
        fields.update(changes)
        if "action" in changes:
            fields["action"] = plain(changes["action"])
        return copy

    def with_action(self, action: str, **changes: Any) -> TaskContext:
        """A copy of this context for another action (used for rollback)."""
        from dataclasses import replace

        changes.setdefault("cancelled", Cancellation())  # a rollback starts uncancelled
        return replace(self, action=action, **changes)


def _unsupported(action: str):  # type: ignore[no-untyped-def]
    def method(self: TaskProcessor, task: Task, ctx: TaskContext) -> Any:
        raise NotSupportedError(
            f"processor {type(self).__name__} ({self.api_version}) does not support "
            f"action {action!r} (task {task.name!r})"
        )

    method.__name__ = action
    method.__doc__ = f"{action}: not supported unless a subclass implements it."
    method._opus_unsupported = True  # type: ignore[attr-defined]
    return method


class TaskProcessor:
    """Base class of every processor: the logic for one ``apiVersion``.

    Subclasses set ``api_version`` and implement the actions they support; each action
    returns a :class:`~opus.Result`, a dict of outputs, or ``None`` (``detect_drift`` may
    return a bool). An action left unimplemented raises :class:`~opus.NotSupportedError`.
    ``max_concurrency`` limits how many of this processor's actions run at once.
    ``replace_on`` names spec keys (dotted paths) that cannot change in place: a change
    there makes apply delete the old resource and create a new one. ``sensitive_outputs``
    names output keys that ``opus output`` masks unless asked to show them.

    ``spec_schema`` is a JSON Schema (draft 2020-12) for the task's raw spec, checked by
    ``validate``, ``plan`` and every run before anything runs (a string that is exactly one
    ``${...}`` reference matches any type); ``None`` leaves the spec unchecked.
    """

    api_version: ClassVar[str] = ""
    max_concurrency: ClassVar[int | None] = None
    spec_schema: ClassVar[Mapping[str, Any] | None] = None
    replace_on: ClassVar[tuple[str, ...]] = ()
    #: output keys whose values are secret: ``opus output`` masks them (``--show-sensitive``)
    sensitive_outputs: ClassVar[tuple[str, ...]] = ()

    create = _unsupported("create")
    update = _unsupported("update")
    delete = _unsupported("delete")
    describe = _unsupported("describe")
    detect_drift = _unsupported("detect_drift")
    rollback = _unsupported("rollback")
    #: ``opus import``: return the outputs and ``resource_checksum`` of what exists
    #: (``Result(exists=False)`` when nothing does; ``drifted=True`` when it differs from
    #: ``ctx.spec``)
    read = _unsupported("read")

    @classmethod
    def supports(cls, action: str) -> bool:
        """Whether this processor implements ``action``."""
        method = getattr(cls, action, None)
        return method is not None and not getattr(method, "_opus_unsupported", False)

    @classmethod
    def supported_actions(cls) -> tuple[str, ...]:
        return tuple(a for a in PROCESSOR_ACTIONS if cls.supports(a))

    def redact(self, spec: Mapping[str, Any]) -> Mapping[str, Any]:
        """Return ``spec`` with secrets masked; what opus stores as the applied spec and shows.

        The default keeps the spec as it is. Processors that accept secrets override it.
        """
        return spec

    def render_reference(
        self, spec: Mapping[str, Any], placement: Placement, value: Any
    ) -> str | None:
        """How a ``${...}`` reference's ``value`` is written into the resolved spec.

        Called by the core while it resolves the spec, for every reference inside a string;
        ``spec`` is the raw spec and ``placement`` says where the reference is (spec path,
        raw string, span). Return the text to put in place of the reference, or ``None`` for
        the default (the value itself for a string that is exactly one reference, its text
        otherwise). A processor that hands strings to an interpreter quotes values here so
        that what a variable or an upstream output holds reaches it as data (``shell/v1``
        quotes command references for the shell). The default returns ``None``.
        """
        return None

    def run_action(self, action: str, task: Task, ctx: TaskContext) -> Result:
        """Call ``action`` and coerce what it returns into a :class:`Result`."""
        if action not in PROCESSOR_ACTIONS:
            raise NotSupportedError(f"unknown processor action {action!r}")
        return Result.coerce(getattr(self, action)(task, ctx))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.api_version}>"
