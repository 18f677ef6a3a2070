"""Checking task specs (and metadata) against JSON Schemas (draft 2020-12).

A processor declares :attr:`~opus.TaskProcessor.spec_schema`; :func:`spec_problems` checks a
task's *raw* spec against it before anything runs. A string that is exactly one ``${...}``
reference stands for a value known only at run time, so it matches any schema: the check
uses a validator whose every keyword lets such a string pass. Problems come back one per
place, each with the spec path and, for a misspelt key, "did you mean".

Each schema is compiled once (see :func:`compile_schema`). A schema written with the common
keywords also gets a plain-Python "certainly valid" test (:mod:`opus.schemashortcut`); a
spec it accepts needs nothing else, so a run whose specs are all of the usual forms imports
no schema library. Every other spec first goes through a
fast yes/no check with :mod:`fastjsonschema` (generated Python code, about ten times faster
than :mod:`jsonschema` on the first-party schemas, see ``benchmarks/schema_validation.py``):
the schema as written, then, for a spec holding a whole reference, a copy where every value
may be one. Only a spec that fails it is examined with :mod:`jsonschema`'s draft 2020-12
validator, reference-tolerant, which decides and lists every problem (so a run whose specs
are all valid never imports jsonschema). A schema using keywords newer than draft 7 that
fastjsonschema does not know (``prefixItems``, ``unevaluated*``, ``$dynamicRef``, ...) is
checked with jsonschema alone, as is every schema when fastjsonschema is not installed.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from .errors import PluginError, SpecError, ValidationErrors
from .schemacache import compile_validator
from .schemashortcut import Check, plain_checker
from .variables import WHOLE_REFERENCE

if TYPE_CHECKING:  # jsonschema is imported on first use: `import opus` stays fast
    from jsonschema.exceptions import ValidationError as _JsError

logger = logging.getLogger(__name__)

_WHOLE_REFERENCE = re.compile(WHOLE_REFERENCE)

#: A schema keyword whose value replaces the generated message for errors at that subschema.
MESSAGE_KEY = "x-opus-message"

_TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


def is_whole_reference(value: object) -> bool:
    """Whether ``value`` is a string that is exactly one ``${...}`` reference."""
    return isinstance(value, str) and _WHOLE_REFERENCE.fullmatch(value) is not None


def _tolerant(check: Callable[..., Any]) -> Callable[..., Iterator[_JsError]]:
    def keyword(validator: Any, value: Any, instance: Any, schema: Any) -> Iterator[_JsError]:
        if is_whole_reference(instance):
            return
        found = check(validator, value, instance, schema)
        if found:
            yield from found

    return keyword


@functools.cache
def _tolerant_validator() -> Any:
    """Draft 2020-12 where a whole-string reference satisfies every keyword."""
    from jsonschema import Draft202012Validator, validators

    return validators.extend(
        Draft202012Validator,
        validators={name: _tolerant(fn) for name, fn in Draft202012Validator.VALIDATORS.items()},
    )


class CompiledSchema:
    """A schema compiled once, ready to check many instances.

    ``plain`` (when the schema's keywords allow one) answers "certainly valid" or "ask the
    others"; ``fast`` answers valid or not (made on first need when there is a ``plain``);
    ``thorough`` (jsonschema, created on first need: a run whose specs are all valid never
    imports jsonschema) lists the problems. The schema
    itself is checked against the draft 2020-12 metaschema when jsonschema is first used
    for it (and by ``opus schema``).
    """

    def __init__(
        self,
        schema: Mapping[str, Any],
        owner: str,
        fast: Any = None,
        plain: Check | None = None,
    ) -> None:
        self.schema = schema
        self.owner = owner
        #: "certainly valid" in plain Python (:mod:`opus.schemashortcut`), when it applies
        self.plain = plain
        self._fast = fast
        self._fast_tried = fast is not None or plain is None
        self._thorough: Any = None

    @property
    def fast(self) -> Any:
        if self._fast is None and not self._fast_tried:  # first needed (the shortcut said no)
            self._fast = _fast_checker(self.schema)  # (two threads may both make one: harmless)
            self._fast_tried = True
        if self._fast is None:
            from jsonschema import Draft202012Validator

            self._check_schema()
            self._fast = Draft202012Validator(self.schema)
        return self._fast

    @property
    def thorough(self) -> Any:
        if self._thorough is None:
            self._check_schema()
            self._thorough = _tolerant_validator()(self.schema)
        return self._thorough

    def _check_schema(self) -> None:
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

        try:
            Draft202012Validator.check_schema(self.schema)
        except SchemaError as exc:
            raise PluginError(f"{self.owner}: invalid JSON Schema: {exc.message}") from None

    def problems(self, instance: Any, root: str = "spec") -> list[tuple[str, str]]:
        """``(path, message)`` for each problem of ``instance``; empty when it is valid."""
        plain = self.plain
        if plain is not None and plain(instance):
            return []
        try:
            if (self._fast or self.fast).is_valid(instance):
                return []
            errors = list(self.thorough.iter_errors(instance))
        except PluginError:
            raise
        except Exception as exc:  # a value no JSON Schema type describes, say
            return [(root, f"cannot be checked against its schema: {exc}")]
        found: list[tuple[str, str]] = []
        for error in errors:
            for item in _explain(error, root):
                if item not in found:
                    found.append(item)
        return found


_cache: dict[int, CompiledSchema] = {}

#: Keywords whose draft 2020-12 meaning fastjsonschema (draft 7) does not implement.
_NEWER_KEYWORDS = frozenset(
    {
        "prefixItems",
        "unevaluatedProperties",
        "unevaluatedItems",
        "$dynamicRef",
        "$dynamicAnchor",
        "$recursiveRef",
        "$recursiveAnchor",
        "$anchor",
        "dependentRequired",
        "minContains",
        "maxContains",
    }
)


class _FastChecker:
    """``is_valid`` through fastjsonschema functions (draft 7 semantics for the keywords
    the schema uses): the schema as written first; for a spec holding a whole-string
    reference that fails it, a copy where every value may be a reference (compiled on
    first need, being about twice the code)."""

    def __init__(self, schema: Mapping[str, Any], check: Callable[[Any], Any]) -> None:
        import fastjsonschema

        self._schema = schema
        self._plain = check
        self._tolerant: Callable[[Any], Any] | None = None
        self._compile = compile_validator
        self._error = fastjsonschema.JsonSchemaException

    def _passes(self, check: Callable[[Any], Any], instance: Any) -> bool:
        try:
            check(instance)
        except self._error:
            return False
        except Exception:  # a value fastjsonschema cannot handle: let jsonschema decide
            return False
        return True

    def is_valid(self, instance: Any) -> bool:
        if self._passes(self._plain, instance):
            return True
        if not _has_reference(instance):
            return False
        if self._tolerant is None:
            from .manifest_schema import allow_references

            self._tolerant = self._compile(_draft7(allow_references(self._schema)))
        return self._passes(self._tolerant, instance)


def _has_reference(value: Any) -> bool:
    if isinstance(value, str):
        return is_whole_reference(value)
    if isinstance(value, Mapping):
        return any(_has_reference(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_reference(v) for v in value)
    return False


def _draft7(schema: Any) -> Any:
    """``schema`` in draft 7 spelling (``dependentSchemas`` -> ``dependencies``), or raise
    ``LookupError`` for a keyword draft 7 does not have."""
    if isinstance(schema, list):
        return [_draft7(item) for item in schema]
    if not isinstance(schema, Mapping):
        return schema
    newer = _NEWER_KEYWORDS & set(schema)
    if newer:
        raise LookupError(sorted(newer)[0])
    out = {}
    for key, value in schema.items():
        if key in ("$schema", "$id", MESSAGE_KEY, "description", "title"):
            continue
        if key == "dependentSchemas":
            key = "dependencies"
        if key in ("properties", "patternProperties", "$defs", "definitions", "dependencies"):
            out[key] = {k: _draft7(v) for k, v in value.items()}
        elif key in ("const", "enum", "default", "examples"):
            out[key] = value
        else:
            out[key] = _draft7(value)
    return out


def _refs(schema: Any) -> Iterator[str]:
    """Every ``$ref`` value in ``schema``."""
    if isinstance(schema, Mapping):
        for key, value in schema.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _refs(item)


def _fast_checker(schema: Mapping[str, Any]) -> _FastChecker | None:
    try:
        import fastjsonschema  # noqa: F401 - is it installed?
    except ImportError:
        return None
    try:
        draft7 = _draft7(schema)
        if any(not ref.startswith("#/") for ref in _refs(draft7)):
            return None  # a reference to another document: jsonschema resolves those
        check = compile_validator(draft7)
    except LookupError:
        return None
    except Exception as exc:  # fastjsonschema cannot compile it: jsonschema alone will do
        logger.debug("fastjsonschema cannot compile a schema (%s); using jsonschema", exc)
        return None
    return _FastChecker(schema, check)


def compile_schema(schema: Mapping[str, Any], owner: str = "schema") -> CompiledSchema:
    """Compile ``schema`` once (cached for the life of the schema object).

    A schema that is not valid JSON Schema raises :class:`PluginError` naming ``owner``
    (when fastjsonschema cannot compile it, or when jsonschema is first used for it).
    """
    cached = _cache.get(id(schema))
    if cached is not None and cached.schema is schema:
        return cached
    plain = plain_checker(schema)
    if plain is not None:  # its keywords are well formed; fastjsonschema is loaded on need
        compiled = CompiledSchema(schema, owner, plain=plain)
    else:
        compiled = CompiledSchema(schema, owner, _fast_checker(schema))
        if compiled._fast is None:
            compiled._check_schema()
    if len(_cache) > 256:
        _cache.clear()
    _cache[id(schema)] = compiled
    return compiled


def spec_problems(
    schema: Mapping[str, Any] | CompiledSchema,
    spec: Any,
    *,
    task: str | None = None,
    file: str | None = None,
    root: str = "spec",
) -> list[SpecError]:
    """One :class:`SpecError` per problem of ``spec`` (under ``root``) against ``schema``."""
    compiled = schema if isinstance(schema, CompiledSchema) else compile_schema(schema)
    return [
        SpecError(message, file=file, task=task, path=path)
        for path, message in compiled.problems(spec, root)
    ]


def validate_spec(schema: Mapping[str, Any] | None, spec: Any, *, task: str | None = None) -> None:
    """Raise every problem of ``spec`` against ``schema`` (nothing if ``schema`` is None).

    For processors that want to re-check their *resolved* spec at run time (a reference
    may have resolved to a value of the wrong type).
    """
    if schema is None:
        return
    problems = spec_problems(schema, spec, task=task)
    if problems:
        raise problems[0] if len(problems) == 1 else ValidationErrors(problems)


# -- messages -------------------------------------------------------------------------------


def _path(root: str, parts: Iterable[Any]) -> str:
    text = root
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    return f"{type(value).__name__} {_show(value)}"


def suggest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when ``word`` looks like a misspelling of one of ``choices``."""
    import difflib  # only when there is a problem to explain

    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _known_keys(schema: Mapping[str, Any]) -> list[str]:
    return sorted(schema.get("properties") or {})


def _explain(error: _JsError, root: str) -> Iterator[tuple[str, str]]:
    path = list(error.absolute_path)
    where = _path(root, path)
    trail = list(error.relative_schema_path)
    if "dependentSchemas" in trail[:-1]:  # about the key that brought the dependency in
        below = trail[trail.index("dependentSchemas") + 2 :]
        if not {"properties", "items", "additionalProperties", "patternProperties"} & set(below):
            where = _path(root, [*path, trail[trail.index("dependentSchemas") + 1]])
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    custom = schema.get(MESSAGE_KEY)
    kind = error.validator
    instance = error.instance
    expected: Any = error.validator_value
    if kind in ("additionalProperties", "unevaluatedProperties") and isinstance(instance, Mapping):
        known = _known_keys(schema)
        patterns = [re.compile(p) for p in schema.get("patternProperties") or {}]
        for key in instance:
            if key in known or any(p.search(str(key)) for p in patterns):
                continue
            hint = suggest(str(key), known) or (f" (allowed: {', '.join(known)})" if known else "")
            yield _path(root, [*path, key]), f"unknown key {key!r}{hint}"
        return
    if custom:
        yield where, str(custom)
        return
    if kind == "required" and isinstance(instance, Mapping):
        unknown = [str(k) for k in instance if k not in _known_keys(schema)]
        for key in expected:
            if key not in instance:
                hint = suggest(key, unknown)
                if hint and schema.get("additionalProperties") is False:
                    continue  # reported once, as the misspelt key ("did you mean")
                yield _path(root, [*path, key]), f"required key is missing{hint}"
        return
    if kind == "type":
        types = expected if isinstance(expected, list) else [expected]
        words = " or ".join(_TYPE_WORDS.get(str(w), str(w)) for w in types)
        yield where, f"must be {words}, not {_type_name(instance)}"
        return
    if kind == "enum":
        allowed = ", ".join(_show(v) for v in expected)
        hint = suggest(str(instance), [str(v) for v in expected])
        yield where, f"must be one of {allowed}, not {_show(instance)}{hint}"
        return
    if kind == "const":
        yield where, f"must be {_show(expected)}, not {_show(instance)}"
        return
    if kind in ("anyOf", "oneOf") and error.context:
        branches = error.context
        if all(e.validator == "type" and list(e.absolute_path) == path for e in branches):
            wanted: list[str] = []
            for branch in branches:
                each: Any = branch.validator_value
                wanted += each if isinstance(each, list) else [each]
            words = " or ".join(dict.fromkeys(_TYPE_WORDS.get(w, w) for w in wanted))
            yield where, f"must be {words}, not {_type_name(instance)}"
            return
        from jsonschema.exceptions import best_match

        inner = best_match(branches)
        if inner is not None and list(inner.absolute_path) != path:
            yield from _explain(inner, root)
            return
    if kind == "additionalProperties" or kind == "propertyNames":
        yield where, error.message
        return
    yield where, _plain(error)


def _plain(error: _JsError) -> str:
    kind, value, instance = error.validator, error.validator_value, error.instance
    simple: dict[str, str] = {
        "minimum": f"must be >= {value}",
        "exclusiveMinimum": f"must be > {value}",
        "maximum": f"must be <= {value}",
        "exclusiveMaximum": f"must be < {value}",
        "minLength": f"must be at least {value} characters long",
        "maxLength": f"must be at most {value} characters long",
        "minItems": f"must have at least {value} item(s)",
        "maxItems": f"must have at most {value} item(s)",
        "minProperties": f"must have at least {value} key(s)",
        "pattern": f"must match {value!r}",
        "uniqueItems": "must not repeat an item",
    }
    if kind in simple:
        return f"{simple[kind]}, not {_show(instance)}"
    return str(error.message)
