"""Shared fixtures: a fresh plugin manager, an engine on memory state."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from support_processors import CreateOnlyProcessor, RecordingProcessor

from opus import Engine, Plugins


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


@pytest.fixture(autouse=True)
def _restore_opus_logger() -> Iterator[None]:
    """In-process CLI runs configure the ``opus`` logger; put it back after each test."""
    logger = logging.getLogger("opus")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]
