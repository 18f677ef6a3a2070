"""opus: process declarative tasks through pluggable processors.

The public names below are imported on first use (PEP 562 module ``__getattr__``), so
``import opus`` -- and the CLI's start-up -- pays only for what it touches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .lazyload import lazy_exports

if TYPE_CHECKING:
    from .actions import Action, Status
    from .cancellation import Cancellation
    from .engine import Engine
    from .errors import (
        CommandError,
        ConfigError,
        CycleError,
        ExecutorConfigError,
        ExecutorError,
        GraphError,
        LockError,
        ManifestError,
        NotFoundError,
        NotSupportedError,
        OpusError,
        PluginError,
        SpecError,
        StateConfigError,
        StateError,
        TaskTimeoutError,
        ValidationErrors,
        VariableError,
    )
    from .facade import Tasks
    from .hooks import Hook, TaskProcessingHook
    from .hookspecs import hookimpl
    from .masking import Masker
    from .model import (
        HistoryEntry,
        LockInfo,
        Result,
        RunRecord,
        RunResult,
        Task,
        TaskOutcome,
        TaskState,
    )
    from .output_check import OutputNotJSONError
    from .plugins import Plugins
    from .processor import TaskContext, TaskProcessor
    from .registry import LazyProcessor
    from .specschema import validate_spec
    from .state.base import StateBackend, StatePersistence


__version__ = "0.1.0"

#: Where each public name lives (relative module).
_LAZY: dict[str, str] = {
    "Action": ".actions",
    "Status": ".actions",
    "Engine": ".engine",
    "Tasks": ".facade",
    "Hook": ".hooks",
    "TaskProcessingHook": ".hooks",
    "hookimpl": ".hookspecs",
    "LazyProcessor": ".registry",
    "Plugins": ".plugins",
    "TaskContext": ".processor",
    "TaskProcessor": ".processor",
    "StateBackend": ".state.base",
    "StatePersistence": ".state.base",
    "validate_spec": ".specschema",
    "Cancellation": ".cancellation",
    "Masker": ".masking",
    "OutputNotJSONError": ".output_check",
    **dict.fromkeys(
        (
            "CommandError", "ConfigError", "CycleError", "ExecutorConfigError", "ExecutorError",
            "GraphError", "LockError", "ManifestError", "NotFoundError", "NotSupportedError",
            "OpusError", "PluginError", "SpecError", "StateConfigError", "StateError",
            "TaskTimeoutError", "ValidationErrors",
            "VariableError",
        ),
        ".errors",
    ),
    **dict.fromkeys(
        (
            "HistoryEntry", "LockInfo", "Result", "RunRecord", "RunResult", "Task",
            "TaskOutcome", "TaskState",
        ),
        ".model",
    ),
}  # fmt: skip


__getattr__ = lazy_exports(__name__, _LAZY)


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "Action",
    "Cancellation",
    "CommandError",
    "ConfigError",
    "CycleError",
    "Engine",
    "ExecutorConfigError",
    "ExecutorError",
    "GraphError",
    "HistoryEntry",
    "Hook",
    "LazyProcessor",
    "LockError",
    "LockInfo",
    "ManifestError",
    "Masker",
    "NotFoundError",
    "NotSupportedError",
    "OpusError",
    "OutputNotJSONError",
    "PluginError",
    "Plugins",
    "Result",
    "RunRecord",
    "RunResult",
    "SpecError",
    "StateBackend",
    "StateConfigError",
    "StateError",
    "StatePersistence",
    "Status",
    "Task",
    "TaskContext",
    "TaskOutcome",
    "TaskProcessingHook",
    "TaskProcessor",
    "TaskState",
    "TaskTimeoutError",
    "Tasks",
    "ValidationErrors",
    "VariableError",
    "hookimpl",
    "validate_spec",
]
