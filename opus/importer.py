"""``opus import``: adopt a resource that already exists (the processor's ``read``)."""

from __future__ import annotations

import difflib
import logging
import os
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .actions import Action, Status
from .errors import CommandError, OpusError
from .model import HistoryEntry, LockInfo, RunRecord, Task, TaskOutcome, TaskState, checksum
from .names import check_context
from .processor import ReadOnlyVariables, TaskContext
from .state.base import this_host
from .validation import validate

if TYPE_CHECKING:
    from .engine import Engine
    from .secret_refs import SpecSecrets
    from .state.base import StateBackend

logger = logging.getLogger(__name__)


class ImportRefused(OpusError):
    """The task cannot be imported (already in state, nothing there, or it differs)."""


def import_task(
    engine: Engine,
    name: str,
    tasks: Iterable[Task],
    context: str,
    variables: Mapping[str, Any],
    run_id: str,
) -> TaskOutcome:
    """Record task ``name`` as applied from what its processor's ``read`` finds.

    Refused (:class:`ImportRefused`, nothing recorded) when the task is already in state,
    when nothing exists, or when what exists differs from the manifest's spec.
    """
    check_context(context)
    task_list = list(tasks)
    registry = engine.plugins.processors()
    graph = validate(task_list, "import", Action.READ, context, registry, variables)
    if name not in graph.tasks:
        close = difflib.get_close_matches(name, list(graph.tasks), n=1)
        names = sorted(graph.tasks)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        if not close and len(names) <= 10:
            hint = f" (they have: {', '.join(names)})"
        raise CommandError(f"no task {name!r} in the manifests{hint}")
    task = graph.tasks[name]
    processor = registry.get(task.api_version)
    if not processor.supports(Action.READ):
        raise CommandError(
            f"processor {type(processor).__name__} ({task.api_version}) cannot import: "
            "it has no 'read' action"
        )
    state = engine.state
    started = time.time()
    lock = LockInfo(context, run_id, os.getpid(), this_host(), started)
    state.acquire_lock(lock, engine.lock_timeout)
    try:
        if state.get(context, name) is not None:
            raise ImportRefused(
                f"task {name!r} is already in state in context {context!r}: nothing to "
                "import (`opus state rm` forgets it)"
            )
        visible = dict(variables)
        for dep in graph.dependencies[name]:
            record = state.get(context, dep)
            for key, value in (record.outputs if record else {}).items():
                visible[f"{dep}:{key}"] = value
        spec = engine.plugins.resolve_spec(task, task.spec, visible, "import", context)
        secrets = _secrets_of(engine, task, graph.tasks, state, context)
        ctx = TaskContext(
            name, spec, "import", context, Action.READ, run_id,
            variables=ReadOnlyVariables(visible), desired_spec=spec,
            secrets=() if secrets is None else secrets.values,
        )  # fmt: skip
        result = processor.run_action(Action.READ, task, ctx)
        message = result.message if secrets is None else secrets.text(result.message or "")
        if result.exists is False:
            raise ImportRefused(
                f"task {name!r}: nothing to import ({message or 'it does not exist'})"
            )
        if result.drifted:
            raise ImportRefused(
                f"task {name!r}: what exists differs from the manifest "
                f"({message or 'drifted'}); make the manifest describe it, or let "
                "`opus apply` create it"
            )
        now = time.time()
        record = TaskState(
            context=context,
            name=name,
            api_version=task.api_version,
            kind=task.kind,
            applied_spec=dict(processor.redact(spec)),
            spec_checksum=checksum(spec),
            outputs=dict(result.outputs),
            resource_checksum=result.resource_checksum,
            status=Status.DONE.value,
            created_at=now,
            updated_at=now,
            run_id=run_id,
            dependencies=tuple(sorted(graph.dependencies[name])),
        )
        state.start_run(
            RunRecord(
                run_id, context, "import", Action.READ.value, started, pid=lock.pid, host=lock.host
            )  # fmt: skip
        )
        entry = HistoryEntry(
            run_id, context, name, "import", Status.DONE.value, now, now - started,
            record.spec_checksum,
        )  # fmt: skip
        state.save(record, entry)
        state.finish_run(run_id, "ok", now, {Status.DONE.value: 1})
        return TaskOutcome(
            name, Status.DONE, "import", dict(result.outputs), duration_s=now - started
        )
    finally:
        state.unlock(context, run_id)


def _secrets_of(
    engine: Engine, task: Task, tasks: Mapping[str, Task], state: StateBackend, context: str
) -> SpecSecrets | None:
    """What masks the sensitive outputs of other tasks ``task``'s spec refers to."""
    from .secret_refs import ReferencedSecrets

    def made_by(name: str) -> str | None:
        if name in tasks:
            return tasks[name].api_version
        record = state.get(context, name)
        return record.api_version if record is not None else None

    def outputs_of(name: str) -> Mapping[str, Any]:
        record = state.get(context, name)
        return record.outputs if record is not None else {}

    prefixes = engine.plugins.variable_prefixes()
    referred = {made_by(ref.task) for ref in task.references(prefixes) if ref.task}
    found = ReferencedSecrets(engine.plugins.processors(), {v for v in referred if v})
    return found.for_task(task, prefixes, made_by, outputs_of)
