"""Value types: tasks, results, state records and run results."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from .actions import Action, Status, plain
from .digests import sha256
from .errors import ManifestError

if TYPE_CHECKING:
    from collections.abc import Collection

    from .variables import Reference

#: The keys a task manifest may have at the top level.
TOP_LEVEL_KEYS = ("apiVersion", "kind", "metadata", "spec")

_TOP_LEVEL_SET = frozenset(TOP_LEVEL_KEYS)

#: Statuses a task can end a run with.
STATUSES: tuple[str, ...] = tuple(str(s) for s in Status)


#: Made once: ``json.dumps`` with options builds an encoder on every call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)
#: The C encoder ``_CANONICAL.encode`` builds on every call, made once (``None`` where the
#: interpreter has no ``_json``). Without the circular-reference check, which needs a dict
#: per call: a value that contains itself ends in ``RecursionError`` instead of
#: ``ValueError``, an error either way.
_make_encoder = getattr(json.encoder, "c_make_encoder", None)
_canonical_chunks = (
    None
    if _make_encoder is None
    else _make_encoder(
        None, str, json.encoder.encode_basestring_ascii, None, ":", ",", True, False, True
    )
)


def canonical_json(value: Any) -> str:
    """Serialise ``value`` deterministically (sorted keys, no spaces)."""
    if _canonical_chunks is None or type(value) is str:
        return _CANONICAL.encode(value)
    return "".join(_canonical_chunks(value, 0))


def checksum(value: Any) -> str:
    """A stable sha256 of ``value``'s canonical JSON form."""
    return sha256(canonical_json(value).encode()).hexdigest()


_variables: Any = None


def _find_references() -> Any:
    """:func:`opus.variables.find_references`, its module imported on first use and kept
    (an import statement per task costs more than the search); looked up on the module
    each time, so a patched one is found."""
    global _variables
    if _variables is None:
        from . import variables

        _variables = variables
    return _variables.find_references


def _plain(task: Task) -> bool:
    """Whether ``task``'s apiVersion and kind are non-empty strings and its name, if any, is
    one: the checks of ``Task.__post_init__`` that can fail once both mappings are dicts."""
    name = task.metadata.get("name")
    return (
        type(task.api_version) is str
        and type(task.kind) is str
        and task.api_version != ""
        and task.kind != ""
        and (name is None or (type(name) is str and name != ""))
    )


def unknown_top_level(doc: Any, *, source: str | None = None) -> ManifestError | None:
    """The problem with a manifest mapping's unknown top-level keys ("did you mean"), if any."""
    if not isinstance(doc, Mapping) or _TOP_LEVEL_SET.issuperset(doc):
        return None
    from .specschema import suggest

    unknown = sorted(str(k) for k in set(doc) - _TOP_LEVEL_SET)
    hints = "".join(suggest(k, TOP_LEVEL_KEYS) for k in unknown)
    metadata = doc.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    return ManifestError(
        f"unknown top-level key(s): {', '.join(unknown)}{hints} "
        f"(allowed: {', '.join(TOP_LEVEL_KEYS)})",
        file=source,
        task=name,
        field=unknown[0],
    )


@dataclass(frozen=True, eq=True)
class Task:
    """One declarative resource: ``apiVersion``, ``kind``, ``metadata``, ``spec``.

    ``spec`` is the raw spec as written; the resolved spec is given to processors as
    ``ctx.spec``. ``source`` says where a manifest task came from (``file:line``).
    """

    api_version: str
    kind: str
    metadata: Mapping[str, Any] = field(default_factory=dict)
    spec: Mapping[str, Any] = field(default_factory=dict)
    source: str | None = field(default=None, compare=False)

    #: caches, set as attributes (never through ``__dict__``, which would make each task's
    #: attributes a dict of its own instead of the compact form instances share)
    _name: ClassVar[str | None] = None
    _references: ClassVar[tuple[frozenset[str] | None, tuple[Reference, ...]] | None] = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "_name", None)
        object.__setattr__(self, "_references", None)
        if type(self.metadata) is dict and type(self.spec) is dict and _plain(self):
            return  # what from_manifest builds (the usual case), checked without ABCs
        if not isinstance(self.metadata, Mapping):
            raise ManifestError("metadata must be a mapping", file=self.source, field="metadata")
        if not isinstance(self.spec, Mapping):
            raise ManifestError(
                f"spec must be a mapping, got {type(self.spec).__name__}",
                file=self.source,
                task=self.metadata.get("name"),
                field="spec",
            )
        for attr in ("api_version", "kind"):
            value = getattr(self, attr)
            if not isinstance(value, str) or not value:
                key = "apiVersion" if attr == "api_version" else attr
                raise ManifestError(
                    f"{key!r} must be a string, not {type(value).__name__} {value!r}"
                    if value and not isinstance(value, str)
                    else f"missing or empty {key!r}",
                    file=self.source,
                    task=self.metadata.get("name"),
                    field=key,
                )
        name = self.metadata.get("name")
        if name is not None and (not isinstance(name, str) or not name):
            raise ManifestError(
                "metadata.name must be a non-empty string", file=self.source, field="metadata.name"
            )

    @property
    def name(self) -> str:
        """``metadata.name``, or a stable id derived from the task's content."""
        name: str | None = self._name
        if name is None:
            given = self.metadata.get("name")
            if given:
                name = str(given)
            else:
                digest = checksum([self.api_version, self.kind, dict(self.spec)])[:12]
                name = f"{self.kind.lower()}-{digest}"
            object.__setattr__(self, "_name", name)
        return name

    def references(self, prefixes: Collection[str] | None = None) -> tuple[Reference, ...]:
        """Every ``${...}`` reference in :attr:`spec` (``prefixes``: the known sources, as
        for :func:`~opus.variables.find_references`), found once per task and kept.

        Raises :class:`~opus.VariableError` for a malformed reference (not cached).
        """
        key = prefixes if prefixes is None or type(prefixes) is frozenset else frozenset(prefixes)
        cached: tuple[frozenset[str] | None, tuple[Reference, ...]] | None = self._references
        if cached is not None and (cached[0] is key or cached[0] == key):
            return cached[1]
        found = tuple(_find_references()(self.spec, prefixes=prefixes))
        object.__setattr__(self, "_references", (key, found))  # the last prefixes asked
        return found

    def _forget_references(self) -> None:
        """Drop the references kept by :meth:`references` (a run does when the task is
        done: they are found again, once, if asked)."""
        object.__setattr__(self, "_references", None)

    @property
    def labels(self) -> Mapping[str, str]:
        return self.metadata.get("labels") or {}

    @property
    def auto_rollback(self) -> bool:
        return bool(self.metadata.get("autoRollback", True))

    @property
    def timeout(self) -> float | None:
        """``metadata.timeout``: seconds an action of this task may run (``None``: no limit)."""
        value = self.metadata.get("timeout")
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return float(value) if value > 0 else None

    @property
    def concurrency_group(self) -> str | None:
        """``metadata.concurrencyGroup``: tasks sharing a group share its limit."""
        return self.metadata.get("concurrencyGroup")

    @classmethod
    def from_manifest(
        cls, doc: Any, *, source: str | None = None, require_name: bool = True
    ) -> Task:
        """Build a task from a manifest mapping (``apiVersion``, ``kind``, ...)."""
        if type(doc) is not dict and not isinstance(doc, Mapping):
            raise ManifestError(
                f"a task manifest must be a mapping, got {type(doc).__name__}", file=source
            )
        metadata = doc.get("metadata")
        if metadata is None:
            metadata = {}
        if type(metadata) is not dict and not isinstance(metadata, Mapping):
            raise ManifestError("metadata must be a mapping", file=source, field="metadata")
        name = metadata.get("name")
        for key in ("apiVersion", "kind"):
            if not doc.get(key):
                raise ManifestError(f"missing {key!r}", file=source, task=name, field=key)
        if require_name and not name:
            raise ManifestError(
                "missing 'metadata.name' (tasks loaded from files must be named)",
                file=source,
                field="metadata.name",
            )
        unknown_keys = unknown_top_level(doc, source=source)
        if unknown_keys is not None:
            raise unknown_keys
        spec = doc.get("spec")
        return cls(
            api_version=doc["apiVersion"],
            kind=doc["kind"],
            metadata=metadata if type(metadata) is dict else dict(metadata),
            spec={} if spec is None else spec,
            source=source,
        )

    def to_manifest(self) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "metadata": dict(self.metadata),
            "spec": dict(self.spec),
        }


@dataclass(frozen=True)
class Result:
    """What a processor action returns.

    ``outputs`` become the task's outputs (variables ``task-name:KEY``);
    ``resource_checksum`` fingerprints the real resource for drift detection;
    ``drifted`` is the answer of ``detect_drift`` (``message`` says why); ``exists=False``
    from ``detect_drift`` says the resource is gone (apply creates it again);
    ``details`` is free-form (``describe``).
    """

    outputs: Mapping[str, Any] = field(default_factory=dict)
    resource_checksum: str | None = None
    drifted: bool | None = None
    message: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    exists: bool | None = None

    def __post_init__(self) -> None:
        # The outputs are the result's own copy, taken now: the run records and reports
        # this dict, and what the processor does with its mapping later changes nothing.
        if self.outputs or type(self.outputs) is not dict:
            object.__setattr__(self, "outputs", dict(self.outputs))

    @classmethod
    def coerce(cls, value: Any) -> Result:
        """Accept what a processor may return: ``Result``, ``dict``, ``bool`` or ``None``."""
        if type(value) is Result:  # already one (the driver coerces what workers coerced)
            return value
        if type(value) is dict and cls is Result:  # the usual return: made without __init__
            made = object.__new__(cls)
            made.__dict__.update(
                outputs=dict(value), resource_checksum=None, drifted=None, message=None,
                details={}, exists=None,
            )  # fmt: skip
            return made
        if value is None:
            return cls()
        if isinstance(value, Result):
            return value
        if isinstance(value, bool):
            return cls(drifted=value)
        if isinstance(value, Mapping):
            return cls(outputs=value)  # copied by __post_init__
        raise TypeError(
            f"a processor must return Result, dict, bool or None, not {type(value).__name__}"
        )


@dataclass(frozen=True, slots=True)
class TaskState:
    """The durable record of one task in one context."""

    context: str
    name: str
    api_version: str = ""
    kind: str = ""
    applied_spec: Mapping[str, Any] | None = None
    spec_checksum: str | None = None
    outputs: Mapping[str, Any] = field(default_factory=dict)
    resource_checksum: str | None = None
    status: str = Status.DONE.value
    created_at: float | None = None
    updated_at: float | None = None
    run_id: str | None = None
    error: str | None = None
    #: the tasks this one depended on when it was last applied (orders orphan pruning)
    dependencies: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["dependencies"] = list(self.dependencies)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskState:
        values = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        if "dependencies" in values:
            values["dependencies"] = tuple(values["dependencies"] or ())
        return cls(**values)


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One thing that happened to a task in a run (kept in the run history)."""

    run_id: str
    context: str
    name: str
    action: str
    status: str
    at: float
    duration_s: float | None = None
    spec_checksum: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RunRecord:
    """One run of a command in a context, as kept by the state backend."""

    run_id: str
    context: str
    command: str
    action: str
    started_at: float
    status: str = "running"  # running | ok | failed | interrupted
    finished_at: float | None = None
    pid: int | None = None
    host: str | None = None
    user: str | None = None
    summary: Mapping[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LockInfo:
    """Who holds a context's lock."""

    context: str
    run_id: str
    pid: int
    host: str
    since: float

    def describe(self) -> str:
        import datetime as _dt

        when = _dt.datetime.fromtimestamp(self.since).isoformat(timespec="seconds")
        return f"run {self.run_id} (pid {self.pid}, host {self.host}) since {when}"


@dataclass(slots=True)
class TaskOutcome:
    """How one task ended in a run."""

    name: str
    status: str
    action: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    duration_s: float | None = None
    drifted: bool | None = None
    spec_drift: bool | None = None
    resource_drift: bool | None = None
    diff: dict[str, Any] | None = None
    details: dict[str, Any] | None = None
    started_at: float | None = None
    finished_at: float | None = None

    def __post_init__(self) -> None:
        self.status = plain(self.status)
        self.action = None if self.action is None else plain(self.action)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "status": self.status,
            "action": self.action,
            "outputs": self.outputs,
            "error": self.error,
            "duration_s": None if self.duration_s is None else round(self.duration_s, 6),
            "drifted": self.drifted,
        }
        for key in ("spec_drift", "resource_drift", "diff", "details"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        return data


@dataclass
class RunResult:
    """The result of :meth:`opus.Engine.run`."""

    run_id: str
    command: str
    action: str
    context: str
    tasks: dict[str, TaskOutcome] = field(default_factory=dict)
    started_at: float = 0.0
    finished_at: float = 0.0
    interrupted: bool = False
    #: tasks recorded in the context but absent from the manifests (pruned or not)
    orphans: list[str] = field(default_factory=list)
    #: Why state could not be written (disk full, database gone), if it could not.
    state_error: str | None = None
    #: Actions were given up on while still running (timeouts ignored, a second Ctrl-C):
    #: their threads may still run; a CLI should exit without waiting for them.
    abandoned: bool = False

    @property
    def ok(self) -> bool:
        """True when no task failed (or was rolled back), the run was not interrupted and
        its state was saved."""
        return (
            not self.interrupted
            and self.state_error is None
            and not any(
                t.status in (Status.FAILED, Status.ROLLED_BACK) for t in self.tasks.values()
            )
        )

    @property
    def changed(self) -> bool:
        """True when something was (or, for plan, would be) created, updated, replaced or
        deleted."""
        return any(
            t.action in _CHANGES and t.status in (Status.DONE, Status.PLANNED)
            for t in self.tasks.values()
        )

    @property
    def drifted(self) -> bool:
        return any(t.drifted for t in self.tasks.values())

    @property
    def duration_s(self) -> float:
        return max(0.0, self.finished_at - self.started_at)

    def counts(self) -> dict[str, int]:
        """How many tasks ended in each status."""
        out: dict[str, int] = {}
        for t in self.tasks.values():
            out[t.status] = out.get(t.status, 0) + 1
        return out

    def summary(self) -> dict[str, int]:
        """The counts a run record keeps: :meth:`counts`, except that a checked task of a
        drift run counts as ``drifted``, ``in_sync`` or ``unknown`` instead of ``done``."""
        out: dict[str, int] = {}
        for t in self.tasks.values():
            key = t.status
            if t.status == "done" and t.action == "detect_drift":
                key = "unknown" if t.drifted is None else ("drifted" if t.drifted else "in_sync")
            out[key] = out.get(key, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "command": self.command,
            "action": self.action,
            "context": self.context,
            "ok": self.ok,
            "interrupted": self.interrupted,
            "duration_s": round(self.duration_s, 6),
            "tasks": {name: t.to_dict() for name, t in self.tasks.items()},
            "orphans": list(self.orphans),
            **({"state_error": self.state_error} if self.state_error else {}),
        }


_CHANGES = frozenset({Action.CREATE, Action.UPDATE, Action.REPLACE, Action.DELETE})
