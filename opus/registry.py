"""Which processor serves which ``apiVersion``, and who supplied it."""

from __future__ import annotations

from collections.abc import Iterable

from .errors import PluginError
from .processor import TaskProcessor


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


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

    def add(self, processor: TaskProcessor | type[TaskProcessor], owner: str) -> TaskProcessor:
        """Register ``processor`` (an instance or a class) as supplied by plugin ``owner``.

        The same class registered twice is harmless; two different classes claiming one
        apiVersion are recorded in :attr:`conflicts` (the first claim is kept).
        """
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
        return processor

    def clear(self) -> None:
        self._processors.clear()
        self._owners.clear()
        self.conflicts.clear()

    def get(self, api_version: str) -> TaskProcessor:
        """The processor for ``api_version``; an unknown one lists the known apiVersions,
        a conflicting one names both claimants (:class:`PluginError`)."""
        if api_version in self.conflicts:
            raise PluginError(self.conflicts[api_version])
        try:
            return self._processors[api_version]
        except KeyError:
            known = ", ".join(sorted(self._processors)) or "none; install a plugin package"
            raise PluginError(
                f"no processor for apiVersion {api_version!r} (known: {known})"
            ) from None

    def __contains__(self, api_version: object) -> bool:
        return api_version in self._processors

    def owner(self, api_version: str) -> str:
        return self._owners[api_version]

    def items(self) -> Iterable[tuple[str, TaskProcessor]]:
        return sorted(self._processors.items())
