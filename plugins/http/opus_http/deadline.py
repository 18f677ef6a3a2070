"""A deadline for one HTTP attempt: ``timeout`` bounds the whole attempt, not each read.

A socket timeout only bounds one ``recv``: a server that sends a byte now and then keeps a
request going for ever. :class:`Deadline` remembers every socket the attempt connects
(through :func:`deadline_handlers`) and shuts them down when the time is up or when the
action is cancelled, which ends any read blocked on them; the caller then reports
:attr:`Deadline.reason` instead of whatever error the interrupted read raised.
"""

from __future__ import annotations

import functools
import socket
import threading
import time
import urllib.request
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opus import Cancellation


class Deadline:
    """Shuts the attempt's sockets down after ``seconds`` or on ``cancelled``; use as a
    context manager around the attempt."""

    def __init__(self, seconds: float, cancelled: Cancellation | None = None) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds
        #: Why the attempt was stopped (``None`` while it may go on).
        self.reason: str | None = None
        self.cancelled = cancelled
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self.expire, args=(f"timed out after {seconds:g}s",))
        self._timer.daemon = True
        self._forget = lambda: None

    def __enter__(self) -> Deadline:
        self._timer.start()
        if self.cancelled is not None:
            self._forget = self.cancelled.add_callback(lambda force: self.expire("cancelled"))
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()
        self._forget()

    def remaining(self) -> float:
        """Seconds left (a socket timeout for the next connection: never zero)."""
        return max(self.end - time.monotonic(), 0.001)

    def track(self, sock: socket.socket | None) -> None:
        """Shut ``sock`` down when the deadline passes (at once if it already has)."""
        if sock is None:
            return
        with self._lock:
            if self.reason is None:
                self._sockets.append(sock)
                return
        _shutdown(sock)

    def expire(self, reason: str) -> None:
        """Stop the attempt: record ``reason`` and shut every socket down."""
        with self._lock:
            if self.reason is not None:
                return
            self.reason = reason
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # closed already, or never connected
        pass


class _Tracked:
    """Mixin for an ``http.client`` connection: hands its socket to ``deadline``."""

    deadline: Deadline

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        self.deadline.track(self.sock)  # type: ignore[attr-defined]


@functools.cache
def _tracked(connection_class: type) -> type:
    return type(f"Tracked{connection_class.__name__}", (_Tracked, connection_class), {})


class _DeadlineMixin:
    """Mixin for urllib's HTTP(S) handlers: every connection (redirects open new ones) is
    tracked by the deadline and gets the time left as its socket timeout."""

    deadline: Deadline

    def do_open(self, http_class: type, req: urllib.request.Request, **kwargs: Any) -> Any:
        deadline = self.deadline

        def connection(host: str, timeout: float | None = None, **options: Any) -> Any:
            left = deadline.remaining()
            conn = _tracked(http_class)(host, timeout=min(timeout or left, left), **options)
            conn.deadline = deadline
            return conn

        return super().do_open(connection, req, **kwargs)  # type: ignore[misc]


class _DeadlineHTTPHandler(_DeadlineMixin, urllib.request.HTTPHandler):
    pass


class _DeadlineHTTPSHandler(_DeadlineMixin, urllib.request.HTTPSHandler):
    pass


def deadline_handlers(deadline: Deadline) -> list[urllib.request.BaseHandler]:
    """urllib handlers (for ``build_opener``) whose connections ``deadline`` bounds."""
    handlers: list[urllib.request.BaseHandler] = []
    for cls in (_DeadlineHTTPHandler, _DeadlineHTTPSHandler):
        handler = cls()
        handler.deadline = deadline
        handlers.append(handler)
    return handlers
