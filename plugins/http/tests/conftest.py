"""Fixtures of the http/v1 tests: local servers on 127.0.0.1 (no network here)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from http_local_server import LocalServer, serve


@pytest.fixture
def api() -> Iterator[LocalServer]:
    """The server a task is configured for."""
    with serve() as local:
        yield local


@pytest.fixture
def stranger() -> Iterator[LocalServer]:
    """Another origin: nothing meant for ``api`` may reach it."""
    with serve() as local:
        yield local
