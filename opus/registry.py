"""Which processor serves which ``apiVersion``, and who supplied it."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import PluginError

if TYPE_CHECKING:
    from .processor import TaskProcessor


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


@dataclass(frozen=True)
class LazyProcessor:
    """A processor named by ``"package.module:Class"``, imported when first needed.

    ``opus_register_processors`` may return these instead of classes so that a plugin's
    processor modules (and what they import) load only when a task uses ``api_version``
    or a command lists the processors -- ``opus --help`` and runs of other processors do
    not pay for them.
    """

    api_version: str
    target: str

    @property
    def qualname(self) -> str:
        return self.target.replace(":", ".")

    def load(self, owner: str) -> TaskProcessor | type[TaskProcessor]:
        from .processor import TaskProcessor

        module_name, _, attribute = self.target.partition(":")
        try:
            value: object = importlib.import_module(module_name)
            for part in attribute.split("."):
                value = getattr(value, part)
        except Exception as exc:  # a broken plugin package: say which one
            raise PluginError(
                f"cannot load processor {self.target!r} for apiVersion {self.api_version!r} "
                f"from plugin {owner!r}: {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(value, (TaskProcessor, type)):
            raise PluginError(f"plugin {owner!r}: {self.target!r} is not a TaskProcessor")
        return value


class ProcessorRegistry:
    """Maps ``apiVersion`` to one processor instance, recording conflicting claims.

    A conflict (two different classes claiming one apiVersion) does not stop the others
    from being listed: :attr:`conflicts` holds its message, and :meth:`get` raises it
    for that apiVersion, so only tasks using it are refused.
    """

    def __init__(self) -> None:
        self._processors: dict[str, TaskProcessor] = {}
        self._owners: dict[str, str] = {}
        #: ``{apiVersion: message naming both claimants}``
        self.conflicts: dict[str, str] = {}
        self._lazy: dict[str, LazyProcessor] = {}
        self._loading = threading.RLock()  # a lazy processor is imported by one thread

    def add(
        self, processor: TaskProcessor | type[TaskProcessor] | LazyProcessor, owner: str
    ) -> TaskProcessor | LazyProcessor:
        """Register ``processor`` (an instance, a class or a :class:`LazyProcessor`) as
        supplied by plugin ``owner``.

        The same class registered twice is harmless; two different classes claiming one
        apiVersion are recorded in :attr:`conflicts` (the first claim is kept).
        """
        if isinstance(processor, LazyProcessor):
            return self._add_lazy(processor, owner)
        from .processor import TaskProcessor  # not at import: `opus --help` needs no model

        if isinstance(processor, type):
            if not issubclass(processor, TaskProcessor):
                raise PluginError(f"plugin {owner!r} returned {processor!r}, not a TaskProcessor")
            processor = processor()
        if not isinstance(processor, TaskProcessor):
            raise PluginError(
                f"plugin {owner!r} returned {processor!r}, not a TaskProcessor instance or class"
            )
        api_version = processor.api_version
        if not api_version or not isinstance(api_version, str):
            raise PluginError(
                f"processor {_qualname(type(processor))} from plugin {owner!r} has no api_version"
            )
        lazy = self._lazy.get(api_version)
        if lazy is not None and lazy.qualname != _qualname(type(processor)):
            self._conflict(api_version, lazy.qualname, _qualname(type(processor)), owner)
            return lazy
        # (the same class as a lazy entry: the loaded one replaces it, below)
        existing = self._processors.get(api_version)
        if existing is not None:
            if type(existing) is type(processor):
                return existing
            self.conflicts[api_version] = (
                f"apiVersion {api_version!r} is claimed by two processors: "
                f"{_qualname(type(existing))} (plugin {self._owners[api_version]!r}) and "
                f"{_qualname(type(processor))} (plugin {owner!r})"
            )
            return existing
        self._processors[api_version] = processor
        self._owners[api_version] = owner
        if lazy is not None:  # gone only once the loaded one is in: `in` never misses it
            del self._lazy[api_version]
        return processor

    def _conflict(self, api_version: str, first: str, second: str, owner: str) -> None:
        self.conflicts[api_version] = (
            f"apiVersion {api_version!r} is claimed by two processors: {first} "
            f"(plugin {self._owners[api_version]!r}) and {second} (plugin {owner!r})"
        )

    def _add_lazy(self, lazy: LazyProcessor, owner: str) -> TaskProcessor | LazyProcessor:
        api_version = lazy.api_version
        existing = self._processors.get(api_version)
        claimed = (
            _qualname(type(existing))
            if existing is not None
            else (self._lazy[api_version].qualname if api_version in self._lazy else None)
        )
        if claimed is None:
            self._lazy[api_version] = lazy
            self._owners[api_version] = owner
            return lazy
        if claimed != lazy.qualname:
            self._conflict(api_version, claimed, lazy.qualname, owner)
        return existing if existing is not None else self._lazy[api_version]

    def _load(self, api_version: str) -> TaskProcessor:
        """Import a lazy processor (the caller holds ``_loading``)."""
        lazy = self._lazy[api_version]
        owner = self._owners[api_version]
        loaded = lazy.load(owner)
        processor = self.add(loaded, owner)
        assert not isinstance(processor, LazyProcessor)
        if processor.api_version != api_version:
            self._processors.pop(processor.api_version, None)
            raise PluginError(
                f"plugin {owner!r} registered {lazy.target!r} for apiVersion {api_version!r}, "
                f"but its api_version is {processor.api_version!r}"
            )
        return processor

    def clear(self) -> None:
        self._processors.clear()
        self._owners.clear()
        self.conflicts.clear()
        self._lazy.clear()

    def get(self, api_version: str) -> TaskProcessor:
        """The processor for ``api_version`` (imported now if it was registered lazily); an
        unknown one lists the known apiVersions, a conflicting one names both claimants
        (:class:`PluginError`)."""
        if api_version in self.conflicts:
            raise PluginError(self.conflicts[api_version])
        try:
            return self._processors[api_version]
        except KeyError:
            # threads (an executor's, a Dask worker's) may ask for it at once: one imports
            # it, the others wait and take what it loaded
            with self._loading:
                if api_version in self._processors:
                    return self._processors[api_version]
                if api_version in self._lazy:
                    return self._load(api_version)
            known = ", ".join(self.api_versions()) or "none; install a plugin package"
            raise PluginError(
                f"no processor for apiVersion {api_version!r} (known: {known})"
            ) from None

    def __contains__(self, api_version: object) -> bool:
        return api_version in self._processors or api_version in self._lazy

    def api_versions(self) -> list[str]:
        """Every registered apiVersion, sorted, without importing lazy processors."""
        return sorted([*self._processors, *self._lazy])

    def owner(self, api_version: str) -> str:
        return self._owners[api_version]

    def items(self) -> Iterable[tuple[str, TaskProcessor]]:
        """Every ``(apiVersion, processor)``, sorted; lazy processors are imported."""
        for api_version in list(self._lazy):
            self.get(api_version)
        return sorted(self._processors.items())
