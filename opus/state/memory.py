"""``memory://``: state kept in this process only (tests, dry experiments)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..model import HistoryEntry, LockInfo, RunRecord, TaskState
from .base import StateBackend, StateChange
from .jsontext import dump_large_json


class MemoryStateBackend(StateBackend):
    """A thread-safe in-process backend; everything is lost when the process ends."""

    scheme = "memory"

    def __init__(self, url: str = "memory://") -> None:
        super().__init__(url)
        self._mutex = threading.RLock()
        #: context -> task name -> record (no key tuple per record)
        self._records: dict[str, dict[str, TaskState]] = {}
        self._history: list[HistoryEntry] = []
        self._runs: dict[str, RunRecord] = {}
        self._locks: dict[str, LockInfo] = {}
        self._reports: dict[str, str] = {}

    def get(self, context: str, name: str) -> TaskState | None:
        with self._mutex:
            return self._records.get(context, {}).get(name)

    def list_records(self, context: str) -> list[TaskState]:
        with self._mutex:
            return sorted(self._records.get(context, {}).values(), key=lambda s: s.name)

    def contexts(self) -> list[str]:
        with self._mutex:
            return sorted(c for c, records in self._records.items() if records)

    def save(self, state: TaskState, entry: HistoryEntry | None = None) -> None:
        with self._mutex:
            self._records.setdefault(state.context, {})[state.name] = state
            if entry is not None:
                self._history.append(entry)

    def remove(self, context: str, name: str, entry: HistoryEntry | None = None) -> bool:
        with self._mutex:
            existed = self._records.get(context, {}).pop(name, None) is not None
            if entry is not None:
                self._history.append(entry)
            return existed

    def save_many(self, changes: Sequence[StateChange]) -> None:
        # Through save/remove (which subclasses may extend), under the lock: other threads
        # see all of the batch or none of it.
        with self._mutex:
            super().save_many(changes)

    def history(self, context: str, name: str, limit: int = 50) -> list[HistoryEntry]:
        with self._mutex:
            found = [h for h in self._history if h.context == context and h.name == name]
        return found[::-1][:limit]

    def start_run(self, record: RunRecord) -> None:
        with self._mutex:
            self._runs[record.run_id] = record

    def finish_run(
        self, run_id: str, status: str, finished_at: float, summary: dict[str, int]
    ) -> None:
        with self._mutex:
            run = self._runs.get(run_id)
            if run is not None:
                self._runs[run_id] = replace(
                    run, status=status, finished_at=finished_at, summary=dict(summary)
                )

    def list_runs(self, context: str | None = None, limit: int = 20) -> list[RunRecord]:
        with self._mutex:
            runs = [r for r in self._runs.values() if context is None or r.context == context]
        return sorted(runs, key=lambda r: r.started_at, reverse=True)[:limit]

    def get_run(self, run_id: str) -> RunRecord | None:
        with self._mutex:
            if run_id in self._runs:
                return self._runs[run_id]
            matches = [r for k, r in self._runs.items() if k.startswith(run_id)]
        return matches[0] if len(matches) == 1 else None

    def run_entries(self, run_id: str) -> list[HistoryEntry]:
        with self._mutex:
            return [h for h in self._history if h.run_id == run_id]

    def save_run_report(self, run_id: str, report: Mapping[str, Any]) -> None:
        # kept as text: a copy the caller cannot change, and a fraction of the objects
        self.save_run_report_text(run_id, dump_large_json(dict(report)))

    def save_run_report_text(self, run_id: str, text: str) -> None:
        with self._mutex:
            self._reports[run_id] = text

    def run_report(self, run_id: str) -> dict[str, Any] | None:
        with self._mutex:
            text = self._reports.get(run_id)
        return None if text is None else dict(json.loads(text))

    def prune(self, keep_runs: int) -> int:
        with self._mutex:
            doomed: set[str] = set()
            locked = {lock.run_id for lock in self._locks.values()}  # runs going on: kept
            for context in {r.context for r in self._runs.values()}:
                runs = self.list_runs(context, limit=len(self._runs))
                doomed.update(r.run_id for r in runs[keep_runs:] if r.run_id not in locked)
            for run_id in doomed:
                del self._runs[run_id]
                self._reports.pop(run_id, None)
            self._history = [h for h in self._history if h.run_id not in doomed]
            return len(doomed)

    def import_state(
        self,
        records: Iterable[TaskState],
        runs: Iterable[RunRecord],
        entries: Iterable[HistoryEntry],
    ) -> None:
        records, runs, entries = list(records), list(runs), list(entries)
        with self._mutex:
            for record in records:
                self._records.setdefault(record.context, {})[record.name] = record
            self._runs.update({r.run_id: r for r in runs})
            self._history.extend(entries)

    def try_lock(self, info: LockInfo) -> LockInfo | None:
        with self._mutex:
            holder = self._locks.get(info.context)
            if holder is not None and holder.run_id != info.run_id:
                return holder
            self._locks[info.context] = info
            return None

    def unlock(self, context: str, run_id: str | None = None) -> bool:
        with self._mutex:
            holder = self._locks.get(context)
            if holder is None or (run_id is not None and holder.run_id != run_id):
                return False
            del self._locks[context]
            return True

    def get_lock(self, context: str) -> LockInfo | None:
        with self._mutex:
            return self._locks.get(context)
