"""opus: process declarative tasks through pluggable processors."""

from __future__ import annotations

from .errors import (
    CommandError,
    ConfigError,
    CycleError,
    ExecutorError,
    GraphError,
    LockError,
    ManifestError,
    NotSupportedError,
    OpusError,
    PluginError,
    StateError,
    ValidationErrors,
    VariableError,
)
from .model import HistoryEntry, LockInfo, Result, RunRecord, RunResult, Task, TaskOutcome, TaskState
from .hookspecs import hookimpl
from .processor import TaskContext, TaskProcessor
from .state.base import StateBackend, StatePersistence


__version__ = "0.1.0"
