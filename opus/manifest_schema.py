"""JSON Schemas of a task manifest: its strict ``metadata`` and the whole document.

:func:`metadata_schema` is what every task's ``metadata`` is checked against before a run;
:func:`document_schema` joins it with every processor's spec schema (``apiVersion`` chooses
the spec schema) for editors (``opus schema``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from .names import NAME_PATTERN, RULE
from .specschema import MESSAGE_KEY
from .variables import WHOLE_REFERENCE

#: The keys ``metadata`` may have.
METADATA_KEYS = (
    "name",
    "labels",
    "annotations",
    "description",
    "dependencies",
    "processingScopes",
    "autoRollback",
    "concurrencyGroup",
    "timeout",
)

#: The longest timeout, in seconds, any timeout input may ask for (``metadata.timeout``,
#: ``--task-timeout``, ``--lock-timeout``, their env vars and config keys): one week, or what
#: a thread can wait (``threading.TIMEOUT_MAX``, 49 days or more) if that were less. Longer,
#: infinite or NaN values are refused before anything runs.
MAX_TIMEOUT = min(604800.0, threading.TIMEOUT_MAX)


def timeout_problem(value: object, *, zero: bool = False) -> str | None:
    """Why ``value`` is not a timeout opus accepts (``"must be a number of seconds > 0 and
    <= 604800 (a week)"``), or ``None`` when it is one; ``zero``: 0 is allowed too (a lock
    timeout of 0 means "do not wait"). Infinity, NaN and booleans are refused."""
    low = ">= 0" if zero else "> 0"
    problem = f"must be a number of seconds {low} and <= {MAX_TIMEOUT:g} (a week)"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return problem
    in_range = (value >= 0 if zero else value > 0) and value <= MAX_TIMEOUT  # NaN: False
    return None if in_range else problem


JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

_STRINGS = {"type": "array", "items": {"type": "string"}}
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}


def _commands(commands: Iterable[str]) -> dict[str, Any]:
    names = sorted(set(commands))
    item: dict[str, Any] = {"type": "string"}
    if names:
        item["enum"] = names
    return {"type": "array", "items": item}


def metadata_schema(commands: Iterable[str] = ()) -> dict[str, Any]:
    """The schema of ``metadata``; ``commands`` are the names allowed in ``commands:`` lists
    (the command map's commands and the actions; none given: any string)."""
    command_list = _commands(commands)
    dependency = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "tasks": _STRINGS,
            "labels": {**_STRING_MAP, "minProperties": 1},
            "commands": command_list,
            "contexts": _STRINGS,
        },
        "allOf": [
            {
                "anyOf": [{"required": ["tasks"]}, {"required": ["labels"]}],
                MESSAGE_KEY: "needs 'tasks' or 'labels'",
            }
        ],
    }
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "name": {
                "type": "string",
                "pattern": NAME_PATTERN,
                "description": f"The task's name: {RULE}.",
            },
            "labels": _STRING_MAP,
            "annotations": _STRING_MAP,
            "description": {"type": "string"},
            "dependencies": {
                "type": "array",
                "items": {
                    "if": {"type": "string"},
                    "then": {"type": "string"},
                    "else": dependency,
                },
            },
            "processingScopes": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"commands": command_list, "contexts": _STRINGS},
                },
            },
            "autoRollback": {"type": "boolean"},
            "concurrencyGroup": {"type": "string", "minLength": 1},
            "timeout": {
                "type": "number",
                "exclusiveMinimum": 0,
                "maximum": MAX_TIMEOUT,
                "description": "Seconds an action of the task may run (at most a week).",
            },
        },
    }


#: A string that is exactly one ``${...}`` reference (it may stand for any value).
REFERENCE_SCHEMA = {
    "type": "string",
    "pattern": f"^{WHOLE_REFERENCE}$",
    "description": "A reference, resolved at run time: ${VAR:name}, ${ENV:NAME}, ...",
}


def allow_references(schema: Any) -> Any:
    """A copy of a spec schema where every value may also be a whole ``${...}`` reference
    (what opus's own check allows), for validators that know nothing of references."""
    if not isinstance(schema, Mapping):
        return schema
    out = dict(schema)
    for key in ("properties", "patternProperties", "$defs"):
        if isinstance(out.get(key), Mapping):
            wrap = key != "$defs"
            out[key] = {k: _value(v) if wrap else allow_references(v) for k, v in out[key].items()}
    for key in ("items", "additionalProperties", "unevaluatedProperties", "contains"):
        if isinstance(out.get(key), Mapping):
            out[key] = _value(out[key])
    if isinstance(out.get("prefixItems"), list):
        out["prefixItems"] = [_value(v) for v in out["prefixItems"]]
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(out.get(key), list):
            out[key] = [allow_references(v) for v in out[key]]
    for key in ("if", "then", "else", "dependentSchemas"):
        value = out.get(key)
        if key == "dependentSchemas" and isinstance(value, Mapping):
            out[key] = {k: allow_references(v) for k, v in value.items()}
        elif isinstance(value, Mapping):
            out[key] = allow_references(value)
    return out


def _value(schema: Any) -> Any:
    if schema is True or schema == {}:
        return schema
    # The schema first: a checker trying branches in order rarely needs the second.
    return {"anyOf": [allow_references(schema), REFERENCE_SCHEMA]}


def document_schema(
    spec_schemas: Mapping[str, Mapping[str, Any] | None], commands: Iterable[str] = ()
) -> dict[str, Any]:
    """One schema for a manifest document (a task or a list of tasks): ``apiVersion``
    selects the spec schema of its processor (``None``: any mapping)."""
    branches = []
    for api_version, schema in sorted(spec_schemas.items()):
        spec: Mapping[str, Any] = {"type": "object"} if schema is None else allow_references(schema)
        if "$id" not in spec:  # its own resource, so that its "#/$defs/..." still resolve
            spec = {"$id": f"urn:opus:spec:{api_version}", **spec}
        branches.append(
            {
                "if": {
                    "properties": {"apiVersion": {"const": api_version}},
                    "required": ["apiVersion"],
                },
                "then": {"properties": {"spec": spec}},
            }
        )
    task: dict[str, Any] = {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"type": "string", "enum": sorted(spec_schemas)},
            "kind": {"type": "string", "minLength": 1},
            "metadata": {**metadata_schema(commands), "required": ["name"]},
            "spec": {"type": ["object", "null"]},
        },
        "allOf": branches,
    }
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": "urn:opus:manifest",
        "title": "opus task manifest",
        "$defs": {"task": task},
        "if": {"type": "array"},
        "then": {"type": "array", "items": {"$ref": "#/$defs/task"}},
        "else": {"$ref": "#/$defs/task"},
    }
