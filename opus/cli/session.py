"""What every CLI command shares: verbosity, plugins, logging set-up."""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import Any

from ..errors import PluginError
from ..plugins import Plugins


class Session:
    """Options given before the subcommand, and the plugins loaded from them."""

    def __init__(self) -> None:
        self.verbosity = 0
        self.disabled: set[str] = set()
        self.plugin_modules: list[str] = []
        self.config: Any = None  # the opus.yaml settings (a .config.Config), once set up
        self.ready = False  # the group's options were applied
        self.plugin_config: dict[str, Any] = {}  # opus.yaml plugin_config
        self.cli_commands: dict[str, Any] | None = None  # plugins' subcommands, once loaded
        self._plugins: Plugins | None = None

    def plugins(self) -> Plugins:
        """Load plugins once: entry points, ``--plugin`` modules, builtins."""
        if self._plugins is None:
            modules = list(self.plugin_modules)
            modules += [m for m in os.environ.get("OPUS_PLUGINS", "").split(",") if m.strip()]
            loaded = []
            for name in modules:
                try:
                    loaded.append(importlib.import_module(name.strip()))
                except ImportError as exc:
                    raise PluginError(f"--plugin {name}: cannot import module: {exc}") from None
                except Exception as exc:  # it imports but fails: name it, as for entry points
                    raise PluginError(
                        f"cannot load plugin module {name.strip()!r} (--plugin): "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
            self._plugins = Plugins(
                disabled=self.disabled, plugins=loaded, plugin_config=self.plugin_config
            )
        return self._plugins

    def disable(self, names: tuple[str, ...] | list[str]) -> None:
        """Block more plugins (a subcommand's ``--disable-plugin``) before plugins load."""
        if names and self._plugins is not None and not set(names) <= self.disabled:
            self._plugins = None
            self.cli_commands = None
        self.disabled.update(names)

    def configure_logging(self) -> None:
        """Logs go to stderr: warnings by default, ``-v`` info, ``-vv`` debug, ``-q`` errors."""
        level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(
            max(-1, min(self.verbosity, 2)), logging.DEBUG
        )
        handler = StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger("opus")
        root.handlers[:] = [handler]
        root.setLevel(level)
        root.propagate = False


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is now (a live view or a test runner may swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass
