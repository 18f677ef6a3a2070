"""A shortcut for the usual case of a spec schema check: "certainly valid", in plain Python.

:func:`plain_checker` turns a JSON Schema written with a small, common set of keywords (the
ones the first-party processors use: ``type``, ``properties``, ``additionalProperties``,
``required``, ``items``, ``enum``, ``pattern``, bounds, local ``$ref``, ``allOf``, ``anyOf``,
``dependentSchemas``, ...) into a function of one instance that answers ``True`` only when
the instance certainly passes the schema as opus checks it (draft 2020-12, a whole-string
``${...}`` reference standing for any value). ``False`` says nothing: the full check
(:mod:`opus.specschema`) decides, and explains. Anything unusual is left to it:

- a schema with any other keyword, or a keyword whose value is not of the form the draft
  2020-12 metaschema requires, gets no shortcut at all (``None``);
- a value of a type other than ``dict``, ``list``, ``str``, ``int``, ``float``, ``bool`` or
  ``None`` (subclasses included), a value of an ``enum``/``const`` that is not a plain
  scalar, and ``not`` are never "certainly valid".

It is about four times faster than fastjsonschema's generated code on the first-party specs
(no exceptions, no generated message text), and it needs no import of either library, so a
run whose specs are all of the usual forms imports neither. ``tests/test_schema_shortcut.py``
checks with Hypothesis that it accepts nothing the full check refuses, for the first-party
schemas and for generated schemas.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

#: A string that is exactly one reference (as :data:`opus.specschema._WHOLE_REFERENCE`).
_is_reference = re.compile(r"\$\{[A-Za-z][A-Za-z0-9_]*:[^}]*\}").fullmatch

Check = Callable[[Any], bool]

_NONE = type(None)
#: JSON Schema type name -> the Python types that are certainly of that type.
_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),  # (1.0 is an integer to JSON Schema too; the full check decides it)
    "number": (int, float),
    "boolean": (bool,),
    "null": (_NONE,),
}
_ALL_TYPES: tuple[type, ...] = (dict, list, str, int, float, bool, _NONE)
_SCALARS = (str, int, bool, _NONE)

#: Keywords that only annotate (their values' forms are checked all the same).
_ANNOTATIONS = {
    "title": str,
    "description": str,
    "$comment": str,
    "x-opus-message": object,
    "default": object,
    "examples": list,
    "deprecated": bool,
    "readOnly": bool,
    "writeOnly": bool,
}
_DIALECT = "https://json-schema.org/draft/2020-12/schema"


class Unsupported(Exception):
    """The schema uses something the shortcut does not handle."""


def plain_checker(schema: Any) -> Check | None:
    """A "certainly valid" test for ``schema``, or ``None`` if it uses anything else than
    the keywords this module knows (then the full check does everything)."""
    try:
        return _Compiler(schema).root()
    except (Unsupported, RecursionError, re.error, TypeError):
        return None


def _count(value: object) -> int:
    if type(value) is not int or value < 0:
        raise Unsupported("not a non-negative integer")
    return value


def _bound(value: object) -> int | float:
    if type(value) not in (int, float) or value != value:  # NaN is no bound
        raise Unsupported("not a number")
    return value  # type: ignore[return-value]


def _names(value: object) -> tuple[str, ...]:
    if type(value) is not list or any(type(item) is not str for item in value):
        raise Unsupported("not a list of strings")
    if len(set(value)) != len(value):
        raise Unsupported("repeated names")
    return tuple(value)


class _Compiler:
    def __init__(self, schema: Any) -> None:
        if not isinstance(schema, Mapping):
            raise Unsupported("the root is not an object")
        self._root = schema
        self._done: dict[str, Check] = {}
        self._busy: set[str] = set()

    def root(self) -> Check:
        schema = dict(self._root)
        if schema.pop("$schema", _DIALECT) != _DIALECT:
            raise Unsupported("another dialect")
        defs = schema.pop("$defs", {})
        if type(defs) is not dict:
            raise Unsupported("$defs")
        for name in defs:  # every definition must be a well-formed schema, used or not
            self._ref(f"#/$defs/{name}")
        return self.compile(schema)

    def _ref(self, ref: object) -> Check:
        if type(ref) is not str or not ref.startswith("#/$defs/"):
            raise Unsupported("a reference other than #/$defs/NAME")
        if ref in self._done:
            return self._done[ref]
        name = ref.removeprefix("#/$defs/")
        defs = self._root.get("$defs")
        if "/" in name or "~" in name or "%" in name or type(defs) is not dict or name not in defs:
            raise Unsupported("an unknown reference")
        if ref in self._busy:
            raise Unsupported("a recursive reference")
        self._busy.add(ref)
        self._done[ref] = self.compile(defs[name])
        self._busy.discard(ref)
        return self._done[ref]

    def compile(self, schema: Any) -> Check:
        """The check of one (sub)schema: its keywords for the instance's type."""
        if schema is True:
            return _any
        if schema is False:
            return _never
        if type(schema) is not dict:
            raise Unsupported("a schema that is not an object")
        allowed = _ALL_TYPES
        if "type" in schema:
            allowed = _type(schema["type"])
        on: dict[type, list[Check]] = {kind: [] for kind in allowed}
        every: list[Check] = []  # keywords for instances of any type
        keys = set(schema)
        for key in sorted(keys):
            value = schema[key]
            if key in _ANNOTATIONS:
                if not isinstance(value, _ANNOTATIONS[key]):
                    raise Unsupported(key)
            elif key == "type":
                pass
            elif key in ("properties", "additionalProperties", "required", "dependentSchemas"):
                pass  # one check below
            elif key in ("minLength", "maxLength", "pattern"):
                self._add(on, (str,), _string(key, value))
            elif key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
                self._add(on, (int, float), _number(key, _bound(value)))
            elif key in ("minItems", "maxItems"):
                self._add(on, (list,), _length(key, _count(value)))
            elif key == "items":
                self._add(on, (list,), _items(self.compile(value)))
            elif key in ("enum", "const"):
                every.append(_choice(value if key == "enum" else [value], key == "enum"))
            elif key == "$ref":
                every.append(self._ref(value))
            elif key in ("allOf", "anyOf"):
                if type(value) is not list or not value:
                    raise Unsupported(key)
                parts = tuple(self.compile(part) for part in value)
                every += parts if key == "allOf" else [_some(parts)]
            elif key == "not":
                self.compile(value)  # well formed, but never "certainly valid"
                every.append(_never)
            else:
                raise Unsupported(key)
        if keys & {"properties", "additionalProperties", "required", "dependentSchemas"}:
            self._add(on, (dict,), self._object(schema))
        if len(every) == 1 and keys - set(_ANNOTATIONS) in ({"$ref"}, {"anyOf"}):
            return every[0]  # a check of whole schemas, which says all for this one
        for kind in on:
            on[kind] += every
        return _node({kind: tuple(checks) for kind, checks in on.items()})

    @staticmethod
    def _add(on: dict[type, list[Check]], kinds: tuple[type, ...], check: Check) -> None:
        for kind in kinds:
            if kind in on:
                on[kind].append(check)

    def _object(self, schema: dict[str, Any]) -> Check:
        properties = schema.get("properties", {})
        if type(properties) is not dict:
            raise Unsupported("properties")
        known = {key: self.compile(value) for key, value in properties.items()}
        extra = schema.get("additionalProperties", True)
        other: Check | None = None if extra is False else self.compile(extra)
        required = _names(schema.get("required", []))
        dependent = schema.get("dependentSchemas", {})
        if type(dependent) is not dict:
            raise Unsupported("dependentSchemas")
        when = tuple((key, self.compile(value)) for key, value in dependent.items())
        return _properties(known, other, required, when)


def _type(value: object) -> tuple[type, ...]:
    names = [value] if type(value) is str else value
    if type(names) is not list or not names or len(set(map(str, names))) != len(names):
        raise Unsupported("type")
    kinds: list[type] = []
    for name in names:
        if type(name) is not str or name not in _TYPES:
            raise Unsupported("type")
        kinds += _TYPES[name]
    return tuple(dict.fromkeys(kinds))


# -- the checks -----------------------------------------------------------------------------


def _any(instance: Any) -> bool:
    return True


def _never(instance: Any) -> bool:
    return False


def _node(on: dict[type, tuple[Check, ...]]) -> Check:
    """Checks by the instance's exact type; an instance of no allowed type, or one failing a
    check, passes only as a whole-string reference."""
    kinds = frozenset(on)
    busy = [(kind, checks) for kind, checks in on.items() if checks]
    if not busy:

        def plain(instance: Any) -> bool:
            kind = type(instance)
            return kind in kinds or (kind is str and _is_reference(instance) is not None)

        return plain
    if len(busy) == 1 and len(busy[0][1]) == 1:
        only, (check,) = busy[0]

        def single(instance: Any) -> bool:
            kind = type(instance)
            if kind is only:
                if check(instance):
                    return True
            elif kind in kinds:
                return True
            return kind is str and _is_reference(instance) is not None

        return single
    get = on.get

    def node(instance: Any) -> bool:
        checks = get(type(instance))
        if checks is not None:
            for check in checks:
                if not check(instance):
                    break
            else:
                return True
        return type(instance) is str and _is_reference(instance) is not None

    return node


def _properties(
    known: dict[str, Check],
    other: Check | None,
    required: tuple[str, ...],
    when: tuple[tuple[str, Check], ...],
) -> Check:
    get = known.get
    named = tuple(known.items())

    def each_key(instance: dict[Any, Any]) -> bool:
        for key, value in instance.items():
            item = get(key) if type(key) is str else None
            if item is None:
                if key in known:  # a key equal to a name without being a str
                    return False
                if other is None or not other(value):
                    return False
            elif not item(value):
                return False
        return rest(instance)

    def each_name(instance: dict[Any, Any]) -> bool:  # any other key is allowed
        for key, item in named:
            if key in instance and not item(instance[key]):
                return False
        return rest(instance)

    def rest(instance: dict[Any, Any]) -> bool:
        for key in required:
            if key not in instance:
                return False
        for key, schema in when:
            if key in instance and not schema(instance):
                return False
        return True

    if other is _any:
        if not named and not when and len(required) == 1:
            only = required[0]
            return lambda instance: only in instance
        return each_name
    return each_key


def _string(keyword: str, value: object) -> Check:
    if keyword == "pattern":
        if type(value) is not str:
            raise Unsupported("pattern")
        search = re.compile(value).search
        return lambda instance: search(instance) is not None
    size = _count(value)
    if keyword == "minLength":
        return lambda instance: len(instance) >= size
    return lambda instance: len(instance) <= size


def _number(keyword: str, bound: int | float) -> Check:
    if keyword == "minimum":
        return lambda instance: not instance < bound
    if keyword == "maximum":
        return lambda instance: not instance > bound
    if keyword == "exclusiveMinimum":
        return lambda instance: not instance <= bound
    return lambda instance: not instance >= bound


def _length(keyword: str, size: int) -> Check:
    if keyword == "minItems":
        return lambda instance: len(instance) >= size
    return lambda instance: len(instance) <= size


def _items(item: Check) -> Check:
    def check(instance: list[Any]) -> bool:
        for value in instance:
            if not item(value):
                return False
        return True

    return check


def _choice(values: object, many: bool) -> Check:
    if type(values) is not list or (many and not values):
        raise Unsupported("enum")
    if any(type(value) not in _SCALARS for value in values):
        return _never  # lists, mappings, floats: equality the full check defines
    allowed = frozenset((type(value), value) for value in values)

    def check(instance: Any) -> bool:
        kind = type(instance)
        return kind in _SCALARS and (kind, instance) in allowed

    return check


def _some(parts: tuple[Check, ...]) -> Check:
    def check(instance: Any) -> bool:
        for part in parts:
            if part(instance):
                return True
        return False

    return check
