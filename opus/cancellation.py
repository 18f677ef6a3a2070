"""Telling a running task action to stop: :class:`Cancellation` (``ctx.cancelled``).

The core cancels an action when it runs over its timeout (``metadata.timeout``,
``Engine(task_timeout=...)``) and, with ``force``, when a second Ctrl-C/SIGTERM ends opus at
once. A processor either polls (``ctx.cancelled.is_set()``, ``ctx.cancelled.wait(1)``) or
registers a callback that stops its work (``ctx.cancelled.add_callback(fn)``; ``opus-shell``
kills the command's process group). Callbacks run in the core's driver thread and must be
quick; with ``force=True`` the process exits right after they return.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

#: A cancellation callback; its argument says whether opus is about to exit (kill hard).
Callback = Callable[[bool], None]


class Cancellation:
    """A flag the core sets when it gives up on an action, plus callbacks to run then.

    Pickling gives a fresh, unset object: an executor that runs actions in another process
    cancels the copy there itself (the Dask executor does, see :mod:`opus.executors.dask`).
    """

    __slots__ = ("_event", "_set", "_callbacks", "reason")

    #: One lock for every cancellation: there is one per action, most are never waited on
    #: or cancelled, and what the lock guards takes microseconds.
    _lock = threading.Lock()

    def __init__(self) -> None:
        # the Event (a Condition and two locks) is made only by the first wait()
        self._event: threading.Event | None = None
        self._set = False
        self._callbacks: list[Callback] = []
        self.reason: str | None = None

    def is_set(self) -> bool:
        """Whether the action was cancelled."""
        return self._set

    def wait(self, timeout: float | None = None) -> bool:
        """Block until cancelled or ``timeout`` seconds passed; returns :meth:`is_set`."""
        with self._lock:
            if self._event is None:
                self._event = threading.Event()
                if self._set:
                    self._event.set()
            event = self._event
        return event.wait(timeout)

    def add_callback(self, callback: Callback) -> Callable[[], None]:
        """Call ``callback(force)`` on cancellation (at once if already cancelled).

        Returns a function that removes the callback (call it when the work is done).
        """
        with self._lock:
            if not self._set:
                self._callbacks.append(callback)
                return lambda: self._remove(callback)
        self._call(callback, force=False)
        return lambda: None

    def cancel(self, reason: str, *, force: bool = False) -> None:
        """Set the flag and run the callbacks (called by the core, from the driver)."""
        with self._lock:
            if self.reason is None:
                self.reason = reason
            self._set = True
            if self._event is not None:
                self._event.set()
            callbacks = list(self._callbacks)
        for callback in callbacks:
            self._call(callback, force=force)

    def _remove(self, callback: Callback) -> None:
        with self._lock:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

    @staticmethod
    def _call(callback: Callback, *, force: bool) -> None:
        try:
            callback(force)
        except Exception:  # a broken callback must not stop the others or the driver
            logger.warning("a cancellation callback failed", exc_info=True)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Cancellation, ())

    def __repr__(self) -> str:
        return f"<Cancellation {'set: ' + str(self.reason) if self.is_set() else 'unset'}>"
