"""Turning Ctrl-C / SIGTERM into a message to the driver loop instead of an exception.

A ``KeyboardInterrupt`` raised at an arbitrary point of the driver (half-way through a
state write, between marking a task running and submitting it) could lose a finished
task or hang the run. While :func:`deliver_interrupts` is active, a signal whose handler
would raise ``KeyboardInterrupt`` calls ``callback`` instead; the driver then stops
starting tasks at a point of its choosing.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

logger = logging.getLogger(__name__)

#: Signals handled: SIGINT always; SIGTERM when its handler raises KeyboardInterrupt (the CLI).
_SIGNALS = tuple(s for s in (signal.SIGINT, getattr(signal, "SIGTERM", None)) if s is not None)


@contextmanager
def deliver_interrupts(callback: Callable[[], None]) -> Iterator[bool]:
    """Route interrupting signals to ``callback`` while the block runs.

    Only the main thread can handle signals; elsewhere this does nothing and yields
    ``False`` (a ``KeyboardInterrupt`` is then whatever Python makes of it). ``callback``
    runs in a signal handler: it must be reentrant (``queue.SimpleQueue.put`` is).
    Handlers that are not Python callables (default or ignored) are left alone.
    """
    if threading.current_thread() is not threading.main_thread():
        yield False
        return
    previous: dict[int, Any] = {}
    for signum in _SIGNALS:
        handler = signal.getsignal(signum)
        if not callable(handler):
            continue
        chained: Callable[..., Any] = handler

        def routed(number: int, frame: Any, handler: Callable[..., Any] = chained) -> None:
            try:
                handler(number, frame)
            except KeyboardInterrupt:
                callback()

        previous[signum] = handler
        signal.signal(signum, routed)
    try:
        yield True
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
