"""Saved plans: what ``opus plan --out FILE`` writes and ``opus apply --plan FILE`` executes.

A saved plan is one JSON document (``"format": "opus.plan/v1"``) holding the manifests and
variables the plan was made from, per task the decided action and its resolved spec, and the
state each decision was based on (the record's ``spec_checksum``, ``updated_at`` and
``run_id``, or ``"absent"``). A ``checksum`` of the document's body detects a file edited
after it was written. The resolved specs hold unredacted values (secrets included): the file
is written with mode 0600.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .actions import Action
from .errors import OpusError
from .fsutil import write_private
from .model import Task, TaskState, checksum
from .planner import Decision
from .variables import UNKNOWN

if TYPE_CHECKING:
    from .model import RunResult

logger = logging.getLogger(__name__)

FORMAT_PREFIX = "opus.plan/v"
VERSION = 1
FORMAT = f"{FORMAT_PREFIX}{VERSION}"
#: What stands for a value known only after apply in a saved resolved spec.
UNKNOWN_MARK = {"__opus_unknown__": "known after apply"}
#: The basis of a decision about a task that had no record.
ABSENT = "absent"


class PlanFileError(OpusError):
    """A file that is not a usable saved plan (not a plan, a newer format, edited)."""


class StalePlanError(OpusError):
    """State changed since the plan was made: the plan is refused and nothing runs."""


def basis_of(record: TaskState | None) -> dict[str, Any] | str:
    """The part of a record a decision depends on (``"absent"`` without a record)."""
    if record is None:
        return ABSENT
    return {
        "spec_checksum": record.spec_checksum,
        "updated_at": record.updated_at,
        "run_id": record.run_id,
        "status": record.status,
    }


def _encode(value: Any) -> Any:
    if value is UNKNOWN:
        return dict(UNKNOWN_MARK)
    if isinstance(value, Mapping):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, Mapping):
        if dict(value) == UNKNOWN_MARK:
            return UNKNOWN
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


@dataclass(frozen=True)
class PlannedTask:
    """One task's entry in a saved plan."""

    name: str
    action: str | None  # None: unchanged
    basis: dict[str, Any] | str
    spec: Mapping[str, Any] | None = None  # resolved (UNKNOWN where known after apply)
    reason: str | None = None
    drifted: bool = False
    replace_paths: tuple[str, ...] = ()
    orphan: bool = False

    def decision(self) -> Decision:
        return Decision(
            None if self.action is None else Action(self.action),
            self.reason,
            self.drifted,
            self.replace_paths,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "reason": self.reason,
            "drifted": self.drifted,
            "replace_paths": list(self.replace_paths),
            "orphan": self.orphan,
            "spec": None if self.spec is None else _encode(self.spec),
            "based_on": self.basis,
        }

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> PlannedTask:
        action = data.get("action")
        if action is not None and action not in (a.value for a in Action):
            raise ValueError(f"task {name!r}: unknown action {action!r}")
        spec = data.get("spec")
        return cls(
            name=name,
            action=action,
            basis=data["based_on"],
            spec=None if spec is None else _decode(spec),
            reason=data.get("reason"),
            drifted=bool(data.get("drifted")),
            replace_paths=tuple(data.get("replace_paths") or ()),
            orphan=bool(data.get("orphan")),
        )


@dataclass
class Plan:
    """A plan that can be saved and applied later, exactly as it was decided.

    ``manifests`` are every manifest task the plan was made from (tasks left out by
    ``targets``/``excludes`` too); ``tasks`` the plan's entry for each task it covers.
    ``result`` is the run that made the plan (not saved).
    """

    context: str
    command: str
    manifests: list[Task]
    variables: dict[str, Any]
    tasks: dict[str, PlannedTask]
    targets: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    refresh: bool = True
    prune: bool = False
    orphans: list[str] = field(default_factory=list)
    run_id: str | None = None
    created_at: float = field(default_factory=time.time)
    result: RunResult | None = field(default=None, compare=False)

    @property
    def changes(self) -> bool:
        return any(t.action is not None for t in self.tasks.values())

    # -- staleness ---------------------------------------------------------------------------
    def stale(self, records: Mapping[str, TaskState]) -> str | None:
        """Why the plan no longer fits ``records`` (the context's state now), or ``None``."""
        for name, planned in sorted(self.tasks.items()):
            now = basis_of(records.get(name))
            if now == planned.basis:
                continue
            record = records.get(name)
            by = f"run {record.run_id}" if record is not None else "its record was removed"
            return f"stale plan: task {name!r} changed since the plan was made ({by})"
        return None

    # -- the document ------------------------------------------------------------------------
    def _body(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "context": self.context,
            "run_id": self.run_id,
            "created_at": self.created_at,
            "options": {
                "targets": list(self.targets),
                "excludes": list(self.excludes),
                "refresh": self.refresh,
                "prune": self.prune,
            },
            "variables": _encode(self.variables),
            "manifests": [{**t.to_manifest(), "source": t.source} for t in self.manifests],
            "tasks": {name: t.to_dict() for name, t in self.tasks.items()},
            "orphans": list(self.orphans),
        }

    def to_json(self) -> str:
        """The versioned JSON document (with a checksum of its body)."""
        body = self._body()
        doc = {"format": FORMAT, "checksum": checksum(body), **body}
        return json.dumps(doc, indent=2, sort_keys=False, default=str) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = "<plan>") -> Plan:
        """Read a saved plan; :class:`PlanFileError` for anything that is not one this
        version of opus can apply."""
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise PlanFileError(f"{source} is not an opus plan (not JSON: {exc})") from None
        fmt = doc.get("format") if isinstance(doc, dict) else None
        if not isinstance(fmt, str) or not fmt.startswith(FORMAT_PREFIX):
            raise PlanFileError(
                f'{source} is not an opus plan (no "format": "{FORMAT}"; write one with '
                "opus plan --out FILE)"
            )
        version = fmt[len(FORMAT_PREFIX) :]
        if not version.isdigit() or int(version) != VERSION:
            newer = version.isdigit() and int(version) > VERSION
            raise PlanFileError(
                f"{source}: plan format {fmt!r} is "
                + ("newer than this opus reads" if newer else "not one this opus reads")
                + f" ({FORMAT}); make the plan again with this opus"
            )
        body = {k: v for k, v in doc.items() if k not in ("format", "checksum")}
        if doc.get("checksum") != checksum(body):
            raise PlanFileError(
                f"{source} was modified after opus wrote it (checksum mismatch); "
                "make the plan again"
            )
        try:
            options = body["options"]
            plan = cls(
                context=body["context"],
                command=body["command"],
                manifests=[
                    Task.from_manifest(  # an unnamed task gets its content's id again
                        {k: v for k, v in m.items() if k != "source"},
                        source=m.get("source"),
                        require_name=False,
                    )
                    for m in body["manifests"]
                ],
                variables=_decode(body["variables"]),
                tasks={n: PlannedTask.from_dict(n, t) for n, t in body["tasks"].items()},
                targets=tuple(options["targets"]),
                excludes=tuple(options["excludes"]),
                refresh=bool(options["refresh"]),
                prune=bool(options["prune"]),
                orphans=list(body["orphans"]),
                run_id=body.get("run_id"),
                created_at=float(body["created_at"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError, OpusError) as exc:
            raise PlanFileError(f"{source} is not a valid opus plan: {exc}") from None
        return plan

    def save(self, path: str | Path) -> None:
        """Write the plan to ``path`` with mode 0600 (it may hold secrets)."""
        write_private(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> Plan:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PlanFileError(f"cannot read plan file {path}: {exc}") from None
        return cls.from_json(text, source=str(path))


def build_plan(
    *,
    context: str,
    command: str,
    manifests: Sequence[Task],
    variables: Mapping[str, Any],
    targets: Sequence[str],
    excludes: Sequence[str],
    refresh: bool,
    prune: bool,
    decisions: Mapping[str, Decision],
    specs: Mapping[str, Mapping[str, Any] | None],
    prior: Mapping[str, TaskState],
    orphans: Sequence[str],
    pruned: Sequence[str],
    result: RunResult,
) -> Plan:
    """A :class:`Plan` from what a ``plan`` run decided."""
    tasks = {
        name: PlannedTask(
            name=name,
            action=None if d.action is None else str(d.action),
            basis=basis_of(prior.get(name)),
            spec=specs.get(name),
            reason=d.reason,
            drifted=d.drifted,
            replace_paths=d.replace_paths,
            orphan=name in pruned,
        )
        for name, d in decisions.items()
    }
    return Plan(
        context=context,
        command=command,
        manifests=list(manifests),
        variables={k: v for k, v in variables.items() if k != "opus.context"},
        tasks=tasks,
        targets=tuple(targets),
        excludes=tuple(excludes),
        refresh=refresh,
        prune=prune,
        orphans=list(orphans),
        run_id=result.run_id,
        result=result,
    )
