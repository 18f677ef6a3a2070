"""Reading a task's recorded outputs (``opus output``), with sensitive values masked.

An output is sensitive when its processor lists its key in
:attr:`~opus.TaskProcessor.sensitive_outputs`. When the processor of the recorded
``apiVersion`` is not installed nobody can tell, so every value is treated as sensitive.
Values a processor already masked (``***``) stay masked either way.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .errors import OpusError
from .planner import MASK

if TYPE_CHECKING:
    from .registry import ProcessorRegistry
    from .state.base import StateBackend

logger = logging.getLogger(__name__)


class OutputError(OpusError):
    """An unknown task or output key."""


def _hint(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def sensitive_keys(
    api_version: str, outputs: Mapping[str, Any], registry: ProcessorRegistry
) -> set[str]:
    """The output keys to mask for a record of ``api_version`` (all of them when its
    processor is not installed or cannot be made)."""
    if api_version not in registry:
        return set(outputs)
    try:
        processor = registry.get(api_version)
    except OpusError:  # a processor whose __init__ fails: nobody can tell either
        return set(outputs)
    return set(processor.sensitive_outputs)


def masked_outputs(
    api_version: str, outputs: Mapping[str, Any], registry: ProcessorRegistry
) -> dict[str, Any]:
    """``outputs`` with the values of sensitive keys (:func:`sensitive_keys`) as ``***``."""
    shown = dict(outputs)
    for key in sensitive_keys(api_version, shown, registry):
        if key in shown:
            shown[key] = MASK
    return shown


def masked_outcome(
    data: dict[str, Any], api_version: str, registry: ProcessorRegistry
) -> dict[str, Any]:
    """An outcome as :meth:`~opus.TaskOutcome.to_dict` gives it, with sensitive outputs
    masked: its ``outputs``, and the recorded ones ``describe`` puts in ``details.state``."""
    if data.get("outputs"):
        data["outputs"] = masked_outputs(api_version, data["outputs"], registry)
    details = data.get("details")
    if not isinstance(details, dict):
        return data
    state = details.get("state")
    if isinstance(state, dict) and isinstance(state.get("outputs"), Mapping):
        made_by = state.get("api_version")
        shown = masked_outputs(made_by if isinstance(made_by, str) else api_version,
                               state["outputs"], registry)  # fmt: skip
        data["details"] = {**details, "state": {**state, "outputs": shown}}
    return data


def recorded_outputs(
    state: StateBackend,
    registry: ProcessorRegistry,
    context: str,
    name: str,
    *,
    show_sensitive: bool = False,
) -> dict[str, Any]:
    """The outputs recorded for task ``name`` in ``context``, sensitive ones masked unless
    ``show_sensitive``. :class:`OutputError` (with "did you mean") for an unknown task."""
    record = state.get(context, name)
    if record is None:
        names = [r.name for r in state.list_records(context)]
        raise OutputError(
            f"no task {name!r} is recorded in context {context!r}{_hint(name, names)}"
        )
    if show_sensitive:
        return dict(record.outputs)
    return masked_outputs(record.api_version, record.outputs, registry)


def output_value(outputs: Mapping[str, Any], name: str, key: str) -> Any:
    """One output; :class:`OutputError` naming the keys there are for an unknown one."""
    if key in outputs:
        return outputs[key]
    keys = sorted(outputs)
    has = f" (it has: {', '.join(keys)})" if keys else " (it has no outputs)"
    raise OutputError(f"task {name!r} has no output {key!r}{has}{_hint(key, keys)}")
