"""A local HTTP server on 127.0.0.1 (ephemeral port, in a thread) for the http/v1 tests."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    action: str = "reply"  # "reply", "drop" (close without answering), "truncate"


@dataclass
class Seen:
    method: str
    path: str
    headers: dict
    body: bytes


class LocalServer:
    """Routes map a path to replies served in order (the last one repeats)."""

    def __init__(self) -> None:
        self.routes: dict[str, list[Reply]] = {}
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.url = ""

    def route(self, path: str, *replies: Reply) -> str:
        self.routes[path] = list(replies)
        return self.url + path

    def next_reply(self, path: str) -> Reply:
        with self.lock:
            replies = self.routes.get(path)
            if not replies:
                return Reply(404, b"not found")
            return replies.pop(0) if len(replies) > 1 else replies[0]

    def hits(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]


def _handler(server: LocalServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with server.lock:
                server.seen.append(Seen(self.command, self.path, dict(self.headers), body))
            reply = server.next_reply(self.path)
            if reply.action == "drop":
                self.close_connection = True
                return
            self.send_response(reply.status)
            declared = len(reply.body) + (100 if reply.action == "truncate" else 0)
            self.send_header("Content-Length", str(declared))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)
            if reply.action == "truncate":
                self.close_connection = True

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextlib.contextmanager
def serve() -> Iterator[LocalServer]:
    """Run a :class:`LocalServer` on 127.0.0.1 (ephemeral port) for the ``with`` block."""
    local = LocalServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(local))
    httpd.daemon_threads = True
    local.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield local
    finally:
        httpd.shutdown()
        httpd.server_close()
