"""The ``opus`` pytest plugin: fixtures for testing processors and plugins with real runs.

Installed with opus (entry point ``pytest11``), so these fixtures are available in any test
suite without imports; disable with ``-p no:opus``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ..engine import Engine


@pytest.fixture
def opus_workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh temporary directory, made the working directory for the test."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    return workdir


@pytest.fixture
def opus_state_url(tmp_path: Path) -> str:
    """The URL of a SQLite state file of the test's own (``sqlite:///.../state.db``)."""
    return f"sqlite:///{tmp_path / 'opus-state' / 'state.db'}"


@pytest.fixture
def opus_engine(opus_state_url: str, opus_workdir: Path) -> Iterator[Engine]:
    """An :class:`~opus.Engine` on a temporary SQLite state, with the installed plugins,
    run from ``opus_workdir``; closed after the test."""
    engine = Engine(state=opus_state_url, parallelism=4)
    try:
        yield engine
    finally:
        engine.close()
