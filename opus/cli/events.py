"""``--output ndjson``: one JSON object per event on stdout, flushed per line.

The schema is documented in ``docs/events.md``; every event carries ``"schema":
"opus.events/v1"``. New fields may be added within v1; renaming or removing one needs v2.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import IO, TYPE_CHECKING, Any

from ..hookspecs import hookimpl

if TYPE_CHECKING:
    from ..model import RunResult, Task, TaskOutcome
    from ..registry import ProcessorRegistry

SCHEMA = "opus.events/v1"


class EventStream:
    """A plugin writing lifecycle events as newline-delimited JSON."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._seq = 0
        self.run_id: str | None = None
        self._registry: ProcessorRegistry | None = None

    def mask_outputs(self, registry: ProcessorRegistry) -> None:
        """Write the outputs ``registry``'s processors mark sensitive as ``***``."""
        self._registry = registry

    def _outcome(self, task: Task, outcome: TaskOutcome) -> dict[str, Any]:
        data = outcome.to_dict()
        if self._registry is None:
            return data
        from ..outputs import masked_outcome

        return masked_outcome(data, task.api_version, self._registry)

    @property
    def stream(self) -> IO[str]:
        return self._stream or sys.stdout

    def emit(self, event: str, **fields: Any) -> None:
        """Write one event: ``schema``, ``event``, ``seq``, ``time``, ``run_id`` and ``fields``."""
        with self._lock:
            self._seq += 1
            data = {
                "schema": SCHEMA,
                "event": event,
                "seq": self._seq,
                "time": round(time.time(), 6),
                "run_id": self.run_id,
                **fields,
            }
            self.stream.write(json.dumps(data, default=str) + "\n")
            self.stream.flush()

    @hookimpl
    def opus_run_start(
        self, run_id: str, command: str, action: str, context: str, tasks: list[Task]
    ) -> None:
        self.run_id = run_id
        self.emit(
            "run_start",
            command=command,
            action=action,
            context=context,
            tasks=[
                {"name": t.name, "apiVersion": t.api_version, "kind": t.kind, "source": t.source}
                for t in tasks
            ],
        )

    @hookimpl
    def opus_task_start(self, task: Task, ctx: Any) -> None:
        self.emit("task_start", task=task.name, action=ctx.action)

    @hookimpl
    def opus_task_done(self, task: Task, ctx: Any, outcome: TaskOutcome) -> None:
        self.emit("task_done", task=task.name, **self._outcome(task, outcome))

    @hookimpl
    def opus_task_failed(self, task: Task, ctx: Any, outcome: TaskOutcome) -> None:
        event = "task_skipped" if outcome.status == "skipped" else "task_failed"
        self.emit(event, task=task.name, **self._outcome(task, outcome))

    @hookimpl
    def opus_run_finish(self, result: RunResult) -> None:
        self.emit(
            "run_finish",
            command=result.command,
            action=result.action,
            context=result.context,
            ok=result.ok,
            interrupted=result.interrupted,
            changed=result.changed,
            drifted=result.drifted,
            duration_s=round(result.duration_s, 6),
            counts=result.counts(),
        )

    def error(self, message: str, exit_code: int) -> None:
        """An ``error`` event: the run could not start (or the CLI failed) — ``message`` is
        what stderr says."""
        self.emit("error", message=message, exit_code=exit_code)

    def exit(self, exit_code: int) -> None:
        """The last event of a stream that got as far as running: the process exit code."""
        self.emit("exit", exit_code=exit_code)
