"""A value made from a sensitive output is sensitive too.

A processor lists the output keys that hold secrets in ``sensitive_outputs``. When another
task's spec refers to one (``${VAR:db:password}``), the text it resolves to is masked
(``***``) wherever opus shows that task's spec: plan diffs (text, JSON, markdown), what
``describe`` and ``drift`` report, ``opus state show`` and ``opus state list -o json``.
The processor gets the real value, and state keeps the applied spec as it was applied (the
secret is in state already, as the other task's output), so refreshes, deletes and
rollbacks work from it. String values are masked, inside longer text too (see
:class:`~opus.masking.Masker`); a number or a list taken whole is not.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .errors import OpusError
from .masking import Masker

if TYPE_CHECKING:
    from .model import Task, TaskState
    from .registry import ProcessorRegistry


class ReferencedSecrets:
    """The sensitive output keys of a run's processors, and what each task refers to."""

    def __init__(self, registry: ProcessorRegistry, api_versions: Iterable[str]) -> None:
        keys: dict[str, frozenset[str]] = {}
        for api_version in set(api_versions):
            if api_version not in registry:
                continue
            try:
                sensitive = registry.get(api_version).sensitive_outputs
            except OpusError:  # a processor that cannot be made fails its own tasks
                continue
            if sensitive:
                keys[api_version] = frozenset(sensitive)
        self._keys = keys

    def __bool__(self) -> bool:
        """Whether any processor of the run has sensitive outputs (most runs: none)."""
        return bool(self._keys)

    def masker(
        self,
        task: Task,
        prefixes: Collection[str] | None,
        api_version_of: Callable[[str], str | None],
        outputs_of: Callable[[str], Mapping[str, Any]],
    ) -> Masker | None:
        """A masker of the sensitive outputs ``task``'s spec refers to (``None``: none).

        ``api_version_of(name)`` and ``outputs_of(name)`` say who made a referenced task
        and what it output (in this run, or as recorded)."""
        if not self._keys:
            return None
        values: list[str] = []
        for ref in task.references(prefixes):
            if ref.task is None:
                continue
            api_version = api_version_of(ref.task)
            keys = self._keys.get(api_version) if api_version is not None else None
            if keys is None or ref.name not in keys:
                continue
            value = outputs_of(ref.task).get(ref.name)
            if isinstance(value, str) and value:
                values.append(value)
        return Masker(values) if values else None


def recorded_masker(
    record: TaskState, recorded: Callable[[str], TaskState | None], registry: ProcessorRegistry
) -> Masker | None:
    """A masker of the sensitive outputs of the tasks ``record`` depends on, as recorded
    (``recorded(name)``): what ``opus state show`` masks in the applied spec it prints.
    Outputs of a processor that is not installed all count as sensitive (nobody can tell)."""
    from .outputs import sensitive_keys

    values: list[str] = []
    for name in record.dependencies or ():
        other = recorded(name)
        if other is None or not other.outputs:
            continue
        for key in sensitive_keys(other.api_version, other.outputs, registry):
            value = other.outputs.get(key)
            if isinstance(value, str) and value:
                values.append(value)
    return Masker(values) if values else None
