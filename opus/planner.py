"""Pure decisions: what a run does to each task, from its spec, its record and a refresh.

Nothing here does I/O; the driver (:mod:`opus.run`) schedules, executes and records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from .actions import Action, Status
from .diff import spec_diff
from .model import Result, Task, TaskOutcome, TaskState, checksum
from .variables import UNKNOWN

#: What processors put in a recorded spec in place of a secret.
MASK = "***"
_REPLACE = Action.REPLACE


class Decision(NamedTuple):
    """What apply (or plan) does to one task, and why."""

    action: Action | None  # None: unchanged
    reason: str | None = None
    drifted: bool = False
    replace_paths: tuple[str, ...] = ()

    @property
    def changes(self) -> bool:
        return self.action is not None

    @property
    def notable(self) -> bool:
        """Whether the reason says more than "the spec changed": drift, a resource gone, a
        replacement."""
        reason = self.reason
        return (
            self.drifted
            or self.action == _REPLACE
            or (reason is not None and (reason == "gone" or reason.startswith("gone:")))
        )


UNCHANGED = Decision(None)
#: A task never applied in this context (shared: decisions are immutable).
_NEW = Decision(Action.CREATE, "not in state")


def contains_unknown(value: Any) -> bool:
    """Whether ``value`` holds a value known only after apply (the ``UNKNOWN`` sentinel)."""
    if value is UNKNOWN:
        return True
    if isinstance(value, Mapping):
        return any(contains_unknown(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(contains_unknown(v) for v in value)
    return False


def changed_paths(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[str]:
    """Dotted spec paths added, removed or changed between ``old`` and ``new``."""
    diff = spec_diff(old, new)
    return sorted({*diff["added"], *diff["removed"], *diff["changed"]})


def _under(path: str, key: str) -> bool:
    return path == key or path.startswith(key + ".")


def replace_paths(
    recorded: Mapping[str, Any] | None, desired: Mapping[str, Any], replace_on: Sequence[str]
) -> tuple[str, ...]:
    """The ``replace_on`` keys whose value differs between the recorded and desired spec."""
    if recorded is None or not replace_on:
        return ()
    changed = changed_paths(recorded, desired)
    return tuple(key for key in replace_on if any(_under(p, key) for p in changed))


def decide(
    desired: Mapping[str, Any],
    prior: TaskState | None,
    refresh: Result | None = None,
    replace_on: Sequence[str] = (),
    redacted: Mapping[str, Any] | None = None,
) -> Decision:
    """The action apply takes for a task.

    ``desired`` is the resolved spec (it may hold ``UNKNOWN`` in a plan), ``prior`` the
    task's record, ``refresh`` what ``detect_drift`` said (``None``: not refreshed),
    ``redacted`` the desired spec as the processor redacts it (compared with the recorded
    spec to find replacements; defaults to ``desired``).
    """
    if prior is None or prior.spec_checksum is None:
        return _NEW
    if refresh is not None and refresh.exists is False:
        return Decision(
            Action.CREATE, f"gone: {refresh.message or 'the resource no longer exists'}"
        )
    drifted, drift = False, ""
    if refresh is not None and refresh.drifted:
        drifted, drift = True, f"drifted: {refresh.message or 'the resource changed'}"
    unknown = contains_unknown(desired)
    spec_changed = unknown or prior.spec_checksum != checksum(desired)
    if spec_changed:  # the change is what is applied; a drift found as well is still said
        also = f"; {drift}" if drifted else ""
        paths = replace_paths(prior.applied_spec, redacted or desired, replace_on)
        if paths:
            return Decision(
                Action.REPLACE,
                f"{', '.join(paths)} changed{also}",
                drifted=drifted,
                replace_paths=paths,
            )
        return Decision(Action.UPDATE, f"spec changed{also}", drifted=drifted)
    if prior.status != Status.DONE:
        return Decision(Action.UPDATE, f"last {prior.status}", drifted=drifted)
    if drifted:
        return Decision(Action.UPDATE, drift, drifted=True)
    return UNCHANGED


def unmask(recorded: Any, desired: Any) -> Any:
    """The recorded spec with masked secrets (``***``) taken from the desired spec.

    Where a recorded value contains the mask and ``desired`` has a value at the same path,
    the desired value is used; elsewhere (an orphan has no desired spec) masks stay.
    """
    if isinstance(recorded, Mapping):
        other = desired if isinstance(desired, Mapping) else {}
        return {k: unmask(v, other.get(k, _MISSING)) for k, v in recorded.items()}
    if isinstance(recorded, list):
        seq = desired if isinstance(desired, list) else []
        return [unmask(v, seq[i] if i < len(seq) else _MISSING) for i, v in enumerate(recorded)]
    if isinstance(recorded, str) and MASK in recorded and desired is not _MISSING:
        return desired
    return recorded


_MISSING: Any = object()


def masked_paths(redacted: Mapping[str, Any]) -> list[str]:
    """Dotted paths of the values a processor masked (``***``) in a redacted spec."""
    found: list[str] = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                walk(item, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{path}[{i}]")
        elif isinstance(value, str) and MASK in value:
            found.append(path)

    walk(redacted, "")
    return sorted(found) or ["(a masked value)"]


def kind_changed(record: TaskState, task: Task) -> bool:
    """Whether the manifest now gives a recorded task another apiVersion: what exists was
    made by the recorded apiVersion's processor, which alone can refresh or delete it."""
    return bool(record.api_version) and record.api_version != task.api_version


def recorded_task(record: TaskState) -> Task:
    """The task as its record has it (apiVersion, kind, applied spec): what a delete of the
    resource that exists goes through, when no manifest names it so any more."""
    return Task(
        api_version=record.api_version or "unknown",
        kind=record.kind or "Unknown",
        metadata={"name": record.name},
        spec=dict(record.applied_spec or {}),
    )


def find_orphans(recorded: Iterable[str], manifest: Iterable[str]) -> list[str]:
    """Recorded task names absent from the manifests, sorted."""
    names = set(manifest)
    return sorted(n for n in set(recorded) if n not in names)


def prune_order(orphans: Sequence[TaskState]) -> list[str]:
    """Orphan names in reverse dependency order: a task before what it depended on."""
    names = {o.name for o in orphans}
    deps = {o.name: [d for d in o.dependencies if d in names] for o in orphans}
    done: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:  # depth-first: dependencies first, reversed at the end
        if name in seen:
            return
        seen.add(name)
        for dep in sorted(deps[name]):
            visit(dep)
        done.append(name)

    for name in sorted(names):
        visit(name)
    return list(reversed(done))


def orphan_edges(orphans: Sequence[TaskState]) -> dict[str, set[str]]:
    """For pruning: each orphan waits for the orphans that depended on it."""
    names = {o.name for o in orphans}
    waits: dict[str, set[str]] = {n: set() for n in names}
    for o in orphans:
        for dep in o.dependencies:
            if dep in names:
                waits[dep].add(o.name)
    return waits


def read_only_outcome(
    name: str,
    action: str,
    spec: Mapping[str, Any],
    prior: TaskState | None,
    result: Result,
    *,
    supported: bool,
    redacted: Mapping[str, Any],
) -> TaskOutcome:
    """The outcome of ``describe`` or ``detect_drift`` (``opus drift``) for one task.

    ``supported`` says whether the processor implements ``detect_drift``; ``redacted`` is
    ``spec`` as the processor redacts it (for the spec diff).
    """
    outputs = dict(result.outputs) or (dict(prior.outputs) if prior else {})
    details = dict(result.details)
    if action == Action.DESCRIBE:
        if prior is not None:
            details.setdefault("state", prior.to_dict())
        return TaskOutcome(name, Status.DONE, Action.DESCRIBE, outputs, details=details or None)
    spec_drift = prior is not None and prior.spec_checksum != checksum(spec)
    resource_drift = result.drifted if supported else None
    if supported and result.exists is False:
        resource_drift = True
    if resource_drift is None and not spec_drift:
        drifted = None  # nobody can tell: reported as "unknown"
    else:
        drifted = bool(spec_drift or resource_drift)
    if spec_drift:
        details["spec_diff"] = spec_diff(prior.applied_spec if prior else None, redacted)
    if result.message:
        details["message"] = result.message
    return TaskOutcome(
        name,
        Status.DONE,
        Action.DETECT_DRIFT,
        outputs,
        drifted=drifted,
        spec_drift=spec_drift,
        resource_drift=resource_drift,
        details=details or None,
    )
