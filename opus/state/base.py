"""The :class:`StateBackend` seam: durable task records, run history and context locks."""

from __future__ import annotations

import errno
import logging
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from ..errors import LockError

if TYPE_CHECKING:  # not imported at run time: `opus --help` reads DEFAULT_STATE_URL only
    from ..model import HistoryEntry, LockInfo, RunRecord, TaskState

logger = logging.getLogger(__name__)

#: Where state lives when nothing else is said.
DEFAULT_STATE_URL = "sqlite:///.opus/state.db"


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True


def this_host() -> str:
    """This machine's host name (what ``socket.gethostname()`` says, without importing
    ``socket``: a few milliseconds of every run's start-up)."""
    try:
        return os.uname().nodename
    except AttributeError:  # no uname (Windows)
        import socket

        return socket.gethostname()


class StateChange(NamedTuple):
    """One change of a :meth:`StateBackend.save_many` batch.

    ``record`` set: insert or replace it; ``record`` ``None``: remove task ``name`` of
    ``context``. ``entry`` (if any) is appended to the history. Build with :meth:`save` or
    :meth:`remove`.
    """

    context: str
    name: str
    record: TaskState | None
    entry: HistoryEntry | None = None

    @classmethod
    def save(cls, record: TaskState, entry: HistoryEntry | None = None) -> StateChange:
        return cls(record.context, record.name, record, entry)

    @classmethod
    def remove(cls, context: str, name: str, entry: HistoryEntry | None = None) -> StateChange:
        return cls(context, name, None, entry)


class StateBackend(ABC):
    """Stores one :class:`TaskState` per ``(context, task name)``, the run history and locks.

    Implementations must make :meth:`save` and :meth:`remove` atomic and durable when they
    return (one transaction per finished task), and must be usable from one writer thread
    while other processes read. Backends are provided by plugins through the
    ``opus_state_backend(url)`` hook.
    """

    #: URL scheme this backend serves (``sqlite``, ``memory``, ...).
    scheme: ClassVar[str] = ""

    def __init__(self, url: str) -> None:
        self.url = url

    # -- task records -------------------------------------------------------------------
    @abstractmethod
    def get(self, context: str, name: str) -> TaskState | None:
        """The record of task ``name`` in ``context``, or ``None``."""

    @abstractmethod
    def list_records(self, context: str) -> list[TaskState]:
        """Every record in ``context``, sorted by task name."""

    @abstractmethod
    def contexts(self) -> list[str]:
        """Every context that has records, sorted."""

    @abstractmethod
    def save(self, state: TaskState, entry: HistoryEntry | None = None) -> None:
        """Insert or replace ``state`` and append ``entry`` to the history, atomically."""

    @abstractmethod
    def remove(self, context: str, name: str, entry: HistoryEntry | None = None) -> bool:
        """Delete a record (and append ``entry``) atomically; ``False`` if there was none."""

    def save_many(self, changes: Sequence[StateChange]) -> None:
        """Apply ``changes`` in order, atomically and durably: one transaction for the batch.

        The driver groups every completion it has at hand into one call, so a run pays one
        commit per batch instead of one per task. This default applies them one by one
        (atomic per change only); backends with transactions override it.
        """
        for change in changes:
            if change.record is not None:
                self.save(change.record, change.entry)
            else:
                self.remove(change.context, change.name, change.entry)

    @abstractmethod
    def history(self, context: str, name: str, limit: int = 50) -> list[HistoryEntry]:
        """The history of one task, newest first."""

    # -- runs ---------------------------------------------------------------------------
    @abstractmethod
    def start_run(self, record: RunRecord) -> None:
        """Record that a run started."""

    @abstractmethod
    def finish_run(
        self, run_id: str, status: str, finished_at: float, summary: dict[str, int]
    ) -> None:
        """Record how a run ended."""

    @abstractmethod
    def list_runs(self, context: str | None = None, limit: int = 20) -> list[RunRecord]:
        """Runs, newest first, optionally of one context."""

    @abstractmethod
    def get_run(self, run_id: str) -> RunRecord | None:
        """One run by id (a unique prefix of the id is enough)."""

    @abstractmethod
    def run_entries(self, run_id: str) -> list[HistoryEntry]:
        """Everything that happened in one run, in order."""

    def save_run_report(self, run_id: str, report: Mapping[str, Any]) -> None:  # noqa: B027
        """Keep what the HTML report of a finished run draws (a JSON document: each task's
        status, times and dependencies; see :func:`opus.report.report_data`).

        Optional: a backend that does not keep it makes reports of past runs show only what
        the history entries say.
        """

    def save_run_report_text(self, run_id: str, text: str) -> None:
        """:meth:`save_run_report` of the document ``text`` is the JSON text of: what the
        engine calls at the end of a run, with text written straight from the outcomes.

        The default parses the text and calls :meth:`save_run_report` (when a backend has
        one); a backend that stores the text as it is overrides this, so that no document
        with an entry per task is ever made.
        """
        if type(self).save_run_report is not StateBackend.save_run_report:
            import json

            self.save_run_report(run_id, json.loads(text))

    def run_report(self, run_id: str) -> dict[str, Any] | None:
        """The document :meth:`save_run_report` kept for ``run_id`` (the full id), if any."""
        return None

    @abstractmethod
    def prune(self, keep_runs: int) -> int:
        """Forget all but the newest ``keep_runs`` runs per context, their history and
        their reports. A run whose lock is held (it is going on) is never forgotten.

        Returns how many runs were removed. Task records are never pruned.
        """

    @abstractmethod
    def import_state(
        self,
        records: Iterable[TaskState],
        runs: Iterable[RunRecord],
        entries: Iterable[HistoryEntry],
    ) -> None:
        """Load records, runs and history entries as they are, in one transaction.

        Used by ``opus state migrate``: either everything is imported or nothing.
        """

    # -- locks --------------------------------------------------------------------------
    @abstractmethod
    def try_lock(self, info: LockInfo) -> LockInfo | None:
        """Take the lock of ``info.context``; ``None`` on success, else the current holder."""

    @abstractmethod
    def unlock(self, context: str, run_id: str | None = None) -> bool:
        """Release the lock (only if held by ``run_id``, or whoever holds it when ``None``)."""

    @abstractmethod
    def get_lock(self, context: str) -> LockInfo | None:
        """Who holds the lock of ``context``, if anyone."""

    def acquire_lock(self, info: LockInfo, timeout: float = 0.0) -> None:
        """Take the context lock, waiting up to ``timeout`` seconds.

        A lock held by a process that no longer exists on this host is taken over with a
        warning. Raises :class:`LockError` naming the holder when the lock stays taken.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            holder = self.try_lock(info)
            if holder is None:
                return
            if holder.host == info.host and holder.pid != info.pid and not pid_alive(holder.pid):
                logger.warning(
                    "taking over the lock of context %r: %s no longer exists",
                    info.context,
                    holder.describe(),
                )
                self.unlock(info.context, holder.run_id)
                continue
            if time.monotonic() >= deadline:
                raise LockError.held(info.context, holder.describe())
            time.sleep(min(0.2, max(0.01, deadline - time.monotonic())))

    def exists(self) -> bool:
        """Whether there is a state store at this URL already (nothing is created to check).

        Commands that only read state (``opus state list``, ``runs list``, ``state migrate
        --from``) refuse a backend where this is ``False`` rather than create an empty one.
        The default says ``True``: a backend that cannot tell is assumed to exist.
        """
        return True

    def close(self) -> None:  # noqa: B027 - optional for backends without connections
        """Release connections; the backend is not used afterwards."""

    def __enter__(self) -> StateBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"


#: The name the seed projects used for the same seam.
StatePersistence = StateBackend
