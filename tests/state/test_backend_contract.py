"""The state backend contract (opus.testing.StateBackendContract) for memory, SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from opus.state.base import StateBackend
from opus.state.memory import MemoryStateBackend
from opus.state.sqlite import SQLiteStateBackend
from opus.testing import StateBackendContract


class TestMemoryBackend(StateBackendContract):
    @pytest.fixture
    def make_backend(self) -> Callable[[], StateBackend]:
        shared = MemoryStateBackend()
        return lambda: shared


class TestSQLiteBackend(StateBackendContract):
    durable = True

    @pytest.fixture
    def backend_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path}/state/opus.db"

    @pytest.fixture
    def make_backend(self, backend_url: str) -> Iterator[Callable[[], StateBackend]]:
        made: list[StateBackend] = []

        def make() -> StateBackend:
            made.append(SQLiteStateBackend(backend_url))
            return made[-1]

        yield make
        for backend in made:
            backend.close()


class TestPostgresBackend(StateBackendContract):
    durable = True

    @pytest.fixture
    def backend_url(self, pg_url: str) -> str:
        return pg_url

    @pytest.fixture
    def make_backend(self, backend_url: str) -> Iterator[Callable[[], StateBackend]]:
        from opus.state.postgres import PostgresStateBackend

        made: list[StateBackend] = []

        def make() -> StateBackend:
            made.append(PostgresStateBackend(backend_url))
            return made[-1]

        yield make
        for backend in made:
            backend.close()
