"""The ``shell/v1`` spec: parsing, validation and the sensitive values it declares."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opus import validate_spec

from .quoting import rendered_forms
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


# Keywords apply to their own type only (minLength to strings, items to lists), so one
# schema with two types says "a string or a list of strings" without alternatives to try.
_COMMAND: dict[str, Any] = {
    "type": ["string", "array"],
    "items": {"type": "string", "minLength": 1},
}
_SECONDS: dict[str, Any] = {"type": "number", "exclusiveMinimum": 0}

#: The ``shell/v1`` spec (JSON Schema 2020-12), checked by opus before anything runs.
SPEC_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "shell/v1 spec",
    "type": "object",
    "additionalProperties": False,
    "required": ["create"],
    "properties": {
        **{key: {**_COMMAND, "description": f"Command(s) for {key}."} for key in COMMAND_KEYS},
        "create": {
            "type": ["string", "array"],
            "minLength": 1,
            "minItems": 1,
            "items": {"type": "string", "minLength": 1},
            "description": "Command(s) for create (and update, without an update command).",
        },
        "cwd": {"type": "string", "description": "Working directory."},
        "env": {
            "type": "object",
            "additionalProperties": {
                "type": ["string", "number", "boolean", "null", "object"],
                "required": ["value"],
                "additionalProperties": False,
                "properties": {"value": {}, "sensitive": {"type": "boolean"}},
                "description": "A value, or {value: ..., sensitive: true}.",
            },
        },
        "sensitiveEnv": {"type": "array", "items": {"type": "string"}},
        "timeout": {**_SECONDS, "description": "Seconds before a command is killed."},
        "shell": {"type": "string", "minLength": 1, "description": "Default /bin/sh."},
        "inheritEnv": {"type": "boolean", "description": "Pass opus's environment (default)."},
        "killGrace": {**_SECONDS, "description": "Seconds between SIGTERM and SIGKILL."},
        "rawReferences": {
            "type": "boolean",
            "description": "Paste ${...} values into commands unquoted (default false: quoted).",
        },
    },
}


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
        """The typed view of a resolved spec (checked against :data:`SPEC_SCHEMA` again,
        since a reference may have resolved to a value of the wrong type)."""
        validate_spec(SPEC_SCHEMA, spec, task=task)
        commands = {key: _commands(spec[key]) for key in COMMAND_KEYS if spec.get(key)}
        return cls(
            commands=commands,
            env=_env(spec.get("env") or {}, spec.get("sensitiveEnv") or []),
            cwd=spec.get("cwd"),
            timeout=spec.get("timeout"),
            shell=spec.get("shell", DEFAULT_SHELL),
            inherit_env=spec.get("inheritEnv", True),
            kill_grace=spec.get("killGrace") or DEFAULT_KILL_GRACE,
        )

    def redactor(self, known: Iterable[str] = ()) -> Redactor:
        """A redactor for every sensitive value this spec declares and every ``known`` one
        (``ctx.secrets``: other tasks' sensitive outputs it holds), in every form the
        plugin's quoting can write it into a command."""
        declared = [var.value for var in self.env.values() if var.sensitive]
        return _redactor([*declared, *known])

    def environment(self, extra: Mapping[str, str]) -> dict[str, str]:
        """A command's environment: inherited (unless ``inheritEnv: false``), ``env``, ``extra``."""
        base = (
            dict(os.environ) if self.inherit_env else {"PATH": os.environ.get("PATH", os.defpath)}
        )
        base.update({name: var.value for name, var in self.env.items()})
        base.update(extra)
        return base


def _commands(value: str | list[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _env(env: Mapping[str, Any], sensitive_names: list[str]) -> dict[str, EnvVar]:
    result: dict[str, EnvVar] = {}
    for name, value in env.items():
        if isinstance(value, Mapping):
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
    return _redactor(secrets).data(redacted)


def _redactor(secrets: Iterable[str]) -> Redactor:
    """Masks each secret as it is and as quoted for any context (``Sup3r\\$ecret`` too)."""
    return Redactor(form for secret in secrets if secret for form in rendered_forms(secret))
