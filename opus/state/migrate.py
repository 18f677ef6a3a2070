"""Moving state between backends (``opus state migrate --from URL --to URL``)."""

from __future__ import annotations

import os
import time
from contextlib import ExitStack
from dataclasses import dataclass

from ..errors import StateConfigError, StateError
from ..model import LockInfo
from .base import StateBackend, this_host

#: Enough to mean "every run" for list_runs.
_ALL = 2**31 - 1


@dataclass(frozen=True)
class MigrationReport:
    """What was copied."""

    contexts: list[str]
    records: int
    runs: int
    entries: int


def migrate_state(
    source: StateBackend, target: StateBackend, lock_timeout: float = 0.0
) -> MigrationReport:
    """Copy every record, run and history entry from ``source`` to ``target``.

    Both sides' contexts are locked for the copy, so no run changes them meanwhile. The
    target must hold no state for those contexts (nothing is merged or overwritten); the
    copy is one transaction on the target and is checked by counting afterwards.
    """
    runs = source.list_runs(None, limit=_ALL)
    contexts = sorted(set(source.contexts()) | {r.context for r in runs})
    clashing = [c for c in contexts if target.list_records(c) or target.list_runs(c, limit=1)]
    if clashing:
        raise StateConfigError(
            f"{target!r} already holds state for context(s) {', '.join(clashing)}; "
            "migrate into an empty backend"
        )
    run_id = f"migrate-{os.getpid()}-{int(time.time())}"
    with ExitStack() as stack:
        for backend in (source, target):
            for context in contexts:
                info = LockInfo(context, run_id, os.getpid(), this_host(), time.time())
                backend.acquire_lock(info, lock_timeout)
                stack.callback(backend.unlock, context, run_id)
        records = [r for c in contexts for r in source.list_records(c)]
        runs = source.list_runs(None, limit=_ALL)
        entries = [e for run in reversed(runs) for e in source.run_entries(run.run_id)]
        target.import_state(records, reversed(runs), entries)
    copied = MigrationReport(
        contexts=contexts,
        records=sum(len(target.list_records(c)) for c in contexts),
        runs=len(target.list_runs(None, limit=_ALL)),
        entries=sum(len(target.run_entries(r.run_id)) for r in runs),
    )
    expected = MigrationReport(contexts, len(records), len(runs), len(entries))
    if copied != expected:
        raise StateError(f"migration check failed: expected {expected}, target has {copied}")
    return copied
