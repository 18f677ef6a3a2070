"""The ``shell/v1`` spec: parsing, validation and the sensitive values it declares."""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from opus import OpusError

from .redaction import MASK, Redactor

#: Spec keys that hold commands, by the action (or purpose) they serve.
COMMAND_KEYS = ("create", "update", "delete", "check", "rollback", "describe")
OPTION_KEYS = (
    "cwd",
    "env",
    "sensitiveEnv",
    "timeout",
    "shell",
    "inheritEnv",
    "killGrace",
    "rawReferences",
)
DEFAULT_SHELL = "/bin/sh"
DEFAULT_KILL_GRACE = 2.0


class ShellSpecError(OpusError):
    """A ``shell/v1`` spec is invalid; the message names the task and the field."""

    def __init__(self, task: str, field: str, message: str) -> None:
        self.task, self.field = task, field
        super().__init__(f"task {task!r}, field 'spec.{field}': {message}")


@dataclass(frozen=True)
class EnvVar:
    value: str
    sensitive: bool = False


@dataclass(frozen=True)
class ShellSpec:
    """A validated ``shell/v1`` spec."""

    commands: Mapping[str, tuple[str, ...]]
    env: Mapping[str, EnvVar] = field(default_factory=dict)
    cwd: str | None = None
    timeout: float | None = None
    shell: str = DEFAULT_SHELL
    inherit_env: bool = True
    kill_grace: float = DEFAULT_KILL_GRACE

    @classmethod
    def parse(cls, task: str, spec: Mapping[str, Any]) -> ShellSpec:
        unknown = sorted(set(spec) - set(COMMAND_KEYS) - set(OPTION_KEYS))
        if unknown:
            known = ", ".join(COMMAND_KEYS + OPTION_KEYS)
            raise ShellSpecError(task, unknown[0], f"unknown key (known: {known})")
        commands = {key: _commands(task, key, spec[key]) for key in COMMAND_KEYS if spec.get(key)}
        env = _env(task, spec.get("env") or {}, spec.get("sensitiveEnv") or [])
        cwd = spec.get("cwd")
        if cwd is not None and not isinstance(cwd, str):
            raise ShellSpecError(task, "cwd", "must be a directory path")
        if not isinstance(spec.get("rawReferences", False), bool):
            raise ShellSpecError(task, "rawReferences", "must be true or false")
        shell = spec.get("shell", DEFAULT_SHELL)
        if not isinstance(shell, str) or not shell:
            raise ShellSpecError(task, "shell", "must be the path of a shell, like /bin/bash")
        return cls(
            commands=commands,
            env=env,
            cwd=cwd,
            timeout=_seconds(task, "timeout", spec.get("timeout")),
            shell=shell,
            inherit_env=bool(spec.get("inheritEnv", True)),
            kill_grace=_seconds(task, "killGrace", spec.get("killGrace")) or DEFAULT_KILL_GRACE,
        )

    def redactor(self) -> Redactor:
        """A redactor for every sensitive value this spec declares."""
        return Redactor(var.value for var in self.env.values() if var.sensitive)

    def environment(self, extra: Mapping[str, str]) -> dict[str, str]:
        """A command's environment: inherited (unless ``inheritEnv: false``), ``env``, ``extra``."""
        base = (
            dict(os.environ) if self.inherit_env else {"PATH": os.environ.get("PATH", os.defpath)}
        )
        base.update({name: var.value for name, var in self.env.items()})
        base.update(extra)
        return base


def _commands(task: str, key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise ShellSpecError(task, key, "must be a command string or a list of command strings")


def _seconds(task: str, key: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ShellSpecError(task, key, f"must be a positive number of seconds, not {value!r}")
    return float(value)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _env(task: str, env: Any, sensitive_names: Any) -> dict[str, EnvVar]:
    if not isinstance(env, Mapping):
        raise ShellSpecError(task, "env", "must map variable names to values")
    if not isinstance(sensitive_names, list) or not all(
        isinstance(n, str) for n in sensitive_names
    ):
        raise ShellSpecError(task, "sensitiveEnv", "must be a list of env variable names")
    result: dict[str, EnvVar] = {}
    for name, value in env.items():
        if isinstance(value, Mapping):
            extra = set(value) - {"value", "sensitive"}
            if "value" not in value or extra:
                raise ShellSpecError(
                    task, f"env.{name}", "must be a value or {value: ..., sensitive: true}"
                )
            result[name] = EnvVar(_text(value["value"]), bool(value.get("sensitive", False)))
        else:
            result[name] = EnvVar(_text(value))
    for name in sensitive_names:
        if name in result:
            result[name] = EnvVar(result[name].value, True)
        elif name in os.environ:  # an inherited variable can be declared sensitive too
            result[name] = EnvVar(os.environ[name], True)
    return result


def redact_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``spec`` with sensitive env values, and any text containing them, masked.

    Works on specs that do not validate too (it never raises): what cannot be parsed is
    copied as it is.
    """
    redacted = copy.deepcopy(dict(spec))
    env = redacted.get("env")
    names = redacted.get("sensitiveEnv") or []
    names = [n for n in names if isinstance(n, str)] if isinstance(names, list) else []
    secrets: list[str] = []
    if isinstance(env, Mapping):
        for name, value in env.items():
            if isinstance(value, Mapping) and value.get("sensitive") and "value" in value:
                secrets.append(_text(value["value"]))
                env[name] = {**value, "value": MASK}
            elif name in names:
                secrets.append(_text(value.get("value") if isinstance(value, Mapping) else value))
                env[name] = {**value, "value": MASK} if isinstance(value, Mapping) else MASK
    secrets += [
        os.environ[n]
        for n in names
        if n in os.environ and not (isinstance(env, Mapping) and n in env)
    ]
    return Redactor(secrets).data(redacted)
