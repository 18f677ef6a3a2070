"""opus: process declarative tasks through pluggable processors."""

from __future__ import annotations

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
from .outputs import OutputError
from .plugins import Plugins
from .processor import TaskContext, TaskProcessor
from .specschema import validate_spec
from .state.base import StateBackend, StatePersistence

__version__ = "0.1.0"

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
    "LockError",
    "LockInfo",
    "ManifestError",
    "Masker",
    "NotFoundError",
    "NotSupportedError",
    "OpusError",
    "OutputError",
    "PluginError",
    "Plugins",
    "SpecError",
    "Result",
    "RunRecord",
    "RunResult",
    "StateBackend",
    "StateConfigError",
    "Status",
    "StateError",
    "StatePersistence",
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
