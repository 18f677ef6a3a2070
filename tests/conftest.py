"""Shared fixtures: a fresh plugin manager, an engine on memory state."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from opus import Engine, Plugins

from support_processors import CreateOnlyProcessor, RecordingProcessor


@pytest.fixture
def plugins() -> Plugins:
    """A plugin manager with only the builtins (no entry points of this machine)."""
    return Plugins(entry_points=False)


@pytest.fixture
def processor() -> RecordingProcessor:
    return RecordingProcessor()


@pytest.fixture
def engine(plugins: Plugins, processor: RecordingProcessor) -> Iterator[Engine]:
    engine = Engine(state="memory://", plugins=plugins, parallelism=4)
    engine.register_processor(processor)
    engine.register_processor(CreateOnlyProcessor)
    yield engine
    engine.close()
