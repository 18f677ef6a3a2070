"""``ShellProcessor``: the ``shell/v1`` processor."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from opus import OpusError, Result, SpecError, Task, TaskContext, TaskProcessor
from opus.variables import Placement, render_text

from . import runner
from .outputs import parse_stdout
from .quoting import UnsafeReference, context_at, quote_for
from .spec import COMMAND_KEYS, SPEC_SCHEMA, ShellSpec, redact_spec

logger = logging.getLogger(__name__)

#: Captured stdout/stderr kept in outputs, in characters (the tail is kept).
MAX_CAPTURE = 64 * 1024
#: Lines of stderr quoted in an error message.
STDERR_TAIL_LINES = 20


class ShellCommandError(OpusError):
    """A command exited non-zero or timed out; the message has the exit code and stderr tail."""

    def __init__(
        self, message: str, *, exit_code: int | None, stderr: str, timed_out: bool = False
    ):
        self.exit_code, self.stderr, self.timed_out = exit_code, stderr, timed_out
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled whole (a Dask worker sends it back to the driver): the keyword-only
        fields are given back by name, which ``Exception``'s own pickling cannot do."""
        fields = {"exit_code": self.exit_code, "stderr": self.stderr, "timed_out": self.timed_out}
        return (_rebuild_command_error, (str(self), fields))


def _rebuild_command_error(message: str, fields: dict[str, Any]) -> ShellCommandError:
    return ShellCommandError(message, **fields)


class ShellProcessor(TaskProcessor):
    """Runs the spec's command for each action.

    ``create``/``update``/``delete``/``rollback``/``describe`` run the command of that name;
    ``update`` falls back to ``create`` when it has none; ``detect_drift`` runs ``check``
    (exit 0: in sync, non-zero: drifted). ``delete`` and ``rollback`` without a command do
    nothing. Sensitive env values are masked in outputs, errors, logs and the stored spec.
    """

    api_version = "shell/v1"
    spec_schema = SPEC_SCHEMA

    def create(self, task: Task, ctx: TaskContext) -> Result:
        """Run ``spec.create``."""
        return self._outputs_of("create", task, ctx, required=True)

    def update(self, task: Task, ctx: TaskContext) -> Result:
        """Run ``spec.update``, or ``spec.create`` when there is no update command."""
        spec = ShellSpec.parse(task.name, ctx.spec)
        key = "update" if "update" in spec.commands else "create"
        return self._outputs_of(key, task, ctx, required=True)

    def delete(self, task: Task, ctx: TaskContext) -> Result:
        """Run ``spec.delete`` (nothing to do without one)."""
        return self._outputs_of("delete", task, ctx, required=False)

    def describe(self, task: Task, ctx: TaskContext) -> Result:
        """Run ``spec.describe``; without one, report the recorded outputs."""
        spec = ShellSpec.parse(task.name, ctx.spec)
        if "describe" not in spec.commands:
            recorded = dict(ctx.state.outputs) if ctx.state else {}
            return Result(outputs=recorded, details={"commands": sorted(spec.commands)})
        return self._outputs_of("describe", task, ctx, required=True)

    def detect_drift(self, task: Task, ctx: TaskContext) -> Result:
        """Run ``spec.check``: exit 0 means in sync, any other exit code means drifted."""
        spec = ShellSpec.parse(task.name, ctx.spec)
        if "check" not in spec.commands:
            return Result(drifted=False, message="no check command: resource drift not checked")
        outputs = self._execute(spec, "check", task, ctx, fail_on_error=False)
        drifted = outputs["exit_code"] != 0
        message = f"check exited {outputs['exit_code']}"
        if drifted and (outputs["stdout"] or outputs["stderr"]):
            message += ": " + _tail(outputs["stdout"] or outputs["stderr"], 1, 200)
        return Result(drifted=drifted, message=message, details=outputs)

    def rollback(self, task: Task, ctx: TaskContext) -> Result:
        """Run ``spec.rollback`` (with ``OPUS_FAILED_ACTION`` and ``OPUS_ERROR`` set)."""
        spec = ShellSpec.parse(task.name, ctx.spec)
        if "rollback" not in spec.commands:
            ctx.logger.warning(
                "no rollback command; %s left as it is", ctx.failed_action or "action"
            )
            return Result(message="no rollback command")
        return Result(outputs=self._execute(spec, "rollback", task, ctx))

    def redact(self, spec: Mapping[str, Any]) -> Mapping[str, Any]:
        """A copy of ``spec`` with sensitive env values (and text containing them) as ``***``."""
        return redact_spec(spec)

    def render_reference(
        self, spec: Mapping[str, Any], placement: Placement, value: Any
    ) -> str | None:
        """Quote a value referenced in a command for the shell (see :mod:`opus_shell.quoting`).

        References in ``env``, ``cwd`` and other non-command keys are left to the core, and so
        is everything when the spec sets ``rawReferences: true``.
        """
        key = placement.path.removeprefix("spec.").split("[", 1)[0].split(".", 1)[0]
        if key not in COMMAND_KEYS or spec.get("rawReferences") is True:
            return None
        try:
            return quote_for(context_at(placement.text, placement.start), render_text(value))
        except UnsafeReference as exc:
            raise OpusError(f"{placement.path}: {exc}") from None

    # -- helpers -----------------------------------------------------------------------------

    def _outputs_of(self, key: str, task: Task, ctx: TaskContext, *, required: bool) -> Result:
        spec = ShellSpec.parse(task.name, ctx.spec)
        if key not in spec.commands:
            if required:
                raise SpecError(
                    f"a command is required for {ctx.action}", task=task.name, path=f"spec.{key}"
                )
            return Result(message=f"no {key} command; nothing to do")
        return Result(outputs=self._execute(spec, key, task, ctx))

    def _execute(
        self, spec: ShellSpec, key: str, task: Task, ctx: TaskContext, *, fail_on_error: bool = True
    ) -> dict[str, Any]:
        """Run the command(s) under ``key``; outputs are already redacted."""
        redactor = spec.redactor(ctx.secrets)
        cwd = spec.cwd
        if cwd is not None and not os.path.isdir(cwd):
            raise SpecError(f"directory {cwd!r} does not exist", task=task.name, path="spec.cwd")
        env = spec.environment(_opus_env(ctx))
        stdout_parts: list[str] = []
        stderr_parts: list[str] = []
        exit_code = 0
        for command in spec.commands[key]:
            shown = redactor.text(command)
            ctx.logger.info("%s: running %s", key, _summary(shown))
            done = runner.run(
                command,
                shell=spec.shell,
                env=env,
                cwd=cwd,
                timeout=spec.timeout,
                kill_grace=spec.kill_grace,
                cancel=ctx.cancelled,
            )
            stdout, stderr = redactor.text(done.stdout), redactor.text(done.stderr)
            stdout_parts.append(stdout)
            stderr_parts.append(stderr)
            exit_code = done.exit_code
            if done.cancelled:
                raise ShellCommandError(
                    f"task {task.name!r}: {key} command stopped, its task was cancelled "
                    f"({ctx.cancelled.reason or 'cancelled'}; process group killed): "
                    f"{_summary(shown)}{_stderr_note(stderr)}",
                    exit_code=exit_code,
                    stderr=stderr,
                    timed_out=True,
                )
            if done.timed_out:
                raise ShellCommandError(
                    f"task {task.name!r}: {key} command timed out after {spec.timeout:g}s "
                    f"(process group killed): {_summary(shown)}{_stderr_note(stderr)}",
                    exit_code=None,
                    stderr=stderr,
                    timed_out=True,
                )
            if exit_code != 0 and fail_on_error:
                raise ShellCommandError(
                    f"task {task.name!r}: {key} command exited {exit_code}: "
                    f"{_summary(shown)}{_stderr_note(stderr)}",
                    exit_code=exit_code,
                    stderr=stderr,
                )
            if exit_code != 0:
                break
        stdout = "".join(stdout_parts)
        outputs: dict[str, Any] = dict(parse_stdout(stdout))
        outputs.update(
            stdout=_cap(stdout.rstrip("\n")),
            stderr=_cap("".join(stderr_parts).rstrip("\n")),
            exit_code=exit_code,
        )
        return redactor.data(outputs) if redactor else outputs


def _opus_env(ctx: TaskContext) -> dict[str, str]:
    env = {
        "OPUS_TASK": ctx.task_name,
        "OPUS_CONTEXT": ctx.context,
        "OPUS_COMMAND": ctx.command,
        "OPUS_ACTION": ctx.action,
        "OPUS_RUN_ID": ctx.run_id,
    }
    if ctx.failed_action:
        env["OPUS_FAILED_ACTION"] = ctx.failed_action
    if ctx.error:
        env["OPUS_ERROR"] = ctx.error
    return env


def _tail(text: str, lines: int, width: int | None = None) -> str:
    kept = "\n".join(text.strip().splitlines()[-lines:])
    if width is not None and len(kept) > width:
        kept = kept[: width - 3] + "..."
    return kept


def _summary(command: str) -> str:
    """The first line of a command (scripts are long), at most 120 characters."""
    lines = [line for line in command.strip().splitlines() if line.strip()]
    first = lines[0] if lines else ""
    if len(first) > 120:
        first = first[:117] + "..."
    return first + (f" (+{len(lines) - 1} lines)" if len(lines) > 1 else "")


def _stderr_note(stderr: str) -> str:
    tail = _tail(stderr, STDERR_TAIL_LINES)
    return f"\nstderr (last lines):\n{tail}" if tail else " (no stderr)"


def _cap(text: str) -> str:
    if len(text) <= MAX_CAPTURE:
        return text
    dropped = len(text) - MAX_CAPTURE
    return f"[... {dropped} characters truncated]\n" + text[-MAX_CAPTURE:]
