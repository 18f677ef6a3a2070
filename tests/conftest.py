"""Shared fixtures: a fresh plugin manager, an engine on memory state."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest
import yaml
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


@pytest.fixture(autouse=True, scope="session")
def _private_cache_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """opus's caches (manifests, schemas) of every test, and of the CLI processes tests
    start, live in a directory of this test session, never in the user's home:
    ``XDG_CACHE_HOME`` reaches subprocesses, which drop ``OPUS_*`` variables."""
    saved = {k: os.environ.get(k) for k in ("XDG_CACHE_HOME", "OPUS_CACHE_DIR", "OPUS_NO_CACHE")}
    home = tmp_path_factory.mktemp("cache-home")
    os.environ["XDG_CACHE_HOME"] = str(home)
    os.environ["OPUS_CACHE_DIR"] = str(home / "opus")
    os.environ.pop("OPUS_NO_CACHE", None)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(autouse=True)
def _restore_opus_logger() -> Iterator[None]:
    """In-process CLI runs configure the ``opus`` logger; put it back after each test."""
    logger = logging.getLogger("opus")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


YAML_LOADERS = [pytest.param("python", id="pyyaml"), pytest.param("fast", id="opus-fast")]
YAML_LOADERS.append(
    pytest.param("libyaml", id="libyaml")
    if hasattr(yaml, "CSafeLoader")
    else pytest.param(
        "libyaml", id="libyaml", marks=pytest.mark.skip(reason="PyYAML built without libyaml")
    )
)


@pytest.fixture(params=YAML_LOADERS)
def yaml_loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> type:
    """Run the test once with each YAML loader opus may use (in this process): PyYAML's
    pure-Python loader, libyaml's, and opus' own (libyaml's with shortcuts, the default)."""
    from opus import yamlsafe

    loader = {
        "python": yaml.SafeLoader,
        "fast": yamlsafe.FastLoader,
        "libyaml": getattr(yaml, "CSafeLoader", None),
    }[request.param]
    monkeypatch.setattr(yamlsafe, "SafeLoader", loader)
    return loader
