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
  ``None`` (subclasses included) under a schema with keywords, a value of an ``enum`` or
  ``const`` that is not a plain scalar, and ``not`` are never "certainly valid" (a schema
  with no keyword at all, like ``{}``, accepts anything, as in the full check).

The schema becomes the source of one small Python function (nested objects and lists get
a helper function each, leaf values are tested inline: ``type(v) is str and len(v) >= 1``),
compiled once per schema: a few times faster than fastjsonschema's generated code on the
first-party specs (no exceptions, no message text), and it imports neither library, so a
run whose specs are all of the usual forms imports neither. Property names enter the source
only as ``repr`` literals and lengths as ``int`` literals; every other value of the schema
(patterns, bounds, enum members) is handed to the function as a name bound to the value.
``tests/test_schema_shortcut.py`` checks with Hypothesis that it accepts nothing the full
check refuses, for the first-party schemas and for generated schemas.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from .schemacache import compile_source
from .variables import WHOLE_REFERENCE

_is_reference = re.compile(WHOLE_REFERENCE).fullmatch

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
#: The names the generated source uses for the types above.
_TYPE_NAMES = {dict: "dict", list: "list", str: "str", int: "int", float: "float"}
_TYPE_NAMES.update({bool: "bool", _NONE: "NoneType"})
#: Where a definition's test names the value it tests (no name in the source has it).
_HOLE = "\x00"
#: Keywords of an object (one helper function) and of a list (another).
_OBJECT = ("properties", "additionalProperties", "required", "dependentSchemas")

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


#: Why a schema gets no shortcut: a keyword it does not know, a malformed value, a schema
#: nested too deeply for Python's parser (``SyntaxError``, ``RecursionError``, ...).
_CANNOT = (Unsupported, RecursionError, MemoryError, SyntaxError, ValueError, TypeError, re.error)


def plain_checker(schema: Any) -> Check | None:
    """A "certainly valid" test for ``schema``, or ``None`` if it uses anything else than
    the keywords this module knows (then the full check does everything)."""
    try:
        return _Compiler(schema).root()
    except _CANNOT:
        return None


def source_of(schema: Any) -> str | None:
    """The Python source :func:`plain_checker` compiles for ``schema`` (for reading)."""
    try:
        compiler = _Compiler(schema)
        compiler.root()
    except _CANNOT:
        return None
    return "\n".join(compiler.lines)


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
    """Writes one function per object and list; leaves, ``$ref`` (each definition's test is
    written once) and ``anyOf``/``allOf`` become expressions where they are used."""

    def __init__(self, schema: Any) -> None:
        if not isinstance(schema, Mapping):
            raise Unsupported("the root is not an object")
        self._root = schema
        self._defs: dict[str, str] = {}  # reference -> its test, of the value named _HOLE
        self._busy: set[str] = set()
        self.lines: list[str] = []
        self.names: dict[str, Any] = {"_ref": _is_reference, "NoneType": _NONE}

    def root(self) -> Check:
        schema = dict(self._root)
        if schema.pop("$schema", _DIALECT) != _DIALECT:
            raise Unsupported("another dialect")
        defs = schema.pop("$defs", {})
        if type(defs) is not dict:
            raise Unsupported("$defs")
        for name in defs:  # every definition must be a well-formed schema, used or not
            self._ref(f"#/$defs/{name}")
        main = self._function(schema)
        namespace = dict(self.names)
        code = compile_source("\n".join(self.lines), "<opus schema shortcut>")
        exec(code, namespace)  # the source written above, for this schema
        check: Check = namespace[main]
        return check

    def _name(self, prefix: str, value: Any = None) -> str:
        name = f"_{prefix}{len(self.names)}"
        self.names[name] = value
        return name

    def _function(self, schema: Any) -> str:
        """A function ``name(x) -> bool`` testing ``schema`` on ``x``."""
        name = self._name("f")
        test = self.test(schema, "x")
        self.lines += [f"def {name}(x):", f"    return {test}", ""]
        return name

    def _ref(self, ref: object) -> str:
        """The test of a definition (written once; where used, of the value there)."""
        if type(ref) is not str or not ref.startswith("#/$defs/"):
            raise Unsupported("a reference other than #/$defs/NAME")
        if ref in self._defs:
            return self._defs[ref]
        name = ref.removeprefix("#/$defs/")
        defs = self._root.get("$defs")
        if "/" in name or "~" in name or "%" in name or type(defs) is not dict or name not in defs:
            raise Unsupported("an unknown reference")
        if ref in self._busy:
            raise Unsupported("a recursive reference")
        self._busy.add(ref)
        self._defs[ref] = self.test(defs[name], _HOLE)
        self._busy.discard(ref)
        return self._defs[ref]

    def test(self, schema: Any, v: str) -> str:
        """An expression, true only if the value named ``v`` certainly passes ``schema``."""
        if schema is True:
            return "True"
        if schema is False:
            return "False"
        if type(schema) is not dict:
            raise Unsupported("a schema that is not an object")
        keys = set(schema)
        if not keys - set(_ANNOTATIONS):
            self._annotations(schema)
            return "True"  # no keyword: anything passes
        allowed = _type(schema["type"]) if "type" in schema else _ALL_TYPES
        on: dict[type, list[str]] = {kind: [] for kind in allowed}
        every: list[str] = []  # what instances of every type must pass
        for key in sorted(keys):
            value = schema[key]
            if key in _ANNOTATIONS or key == "type" or key in _OBJECT:
                continue
            if key in ("minLength", "maxLength", "pattern"):
                self._add(on, (str,), self._string(key, value, v))
            elif key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
                self._add(on, (int, float), self._number(key, value, v))
            elif key in ("minItems", "maxItems"):
                sign = ">=" if key == "minItems" else "<="
                self._add(on, (list,), f"len({v}) {sign} {_count(value)}")
            elif key == "items":
                self._add(on, (list,), f"{self._items(value)}({v})")
            elif key in ("enum", "const"):
                if key == "enum" and (type(value) is not list or not value):
                    raise Unsupported("enum")
                for kind in on:
                    on[kind].append(self._choice(value if key == "enum" else [value], kind, v))
            elif key == "$ref":
                every.append(self._ref(value).replace(_HOLE, v))
            elif key in ("allOf", "anyOf"):
                if type(value) is not list or not value:
                    raise Unsupported(key)
                parts = [self.test(part, v) for part in value]
                every += parts if key == "allOf" else [f"({' or '.join(parts)})"]
            elif key == "not":
                self.test(value, v)  # well formed, but never "certainly valid"
                every.append("False")
            else:
                raise Unsupported(key)
        self._annotations(schema)
        if keys & set(_OBJECT):
            self._add(on, (dict,), self._object(schema, v))
        if "type" not in schema and not any(on.values()):  # (every is not empty)
            strict = " and ".join(every)  # each test there checks the types it knows
            return f"(({strict}) or (type({v}) is str and _ref({v}) is not None))"
        loose = [kind for kind, tests in on.items() if not tests]
        cases = [f"type({v}) is {_TYPE_NAMES[kind]}" for kind in loose[:1]]
        if len(loose) > 1:
            cases = [f"type({v}) in {self._name('k', frozenset(loose))}"]
        for kind, tests in on.items():
            if tests:
                cases.append(" and ".join([f"type({v}) is {_TYPE_NAMES[kind]}", *tests]))
        strict = " or ".join(f"({case})" for case in cases) or "False"
        if every:
            strict = " and ".join([f"({strict})", *every])
        return f"(({strict}) or (type({v}) is str and _ref({v}) is not None))"

    @staticmethod
    def _annotations(schema: dict[str, Any]) -> None:
        for key, value in schema.items():
            if key in _ANNOTATIONS and not isinstance(value, _ANNOTATIONS[key]):
                raise Unsupported(key)

    @staticmethod
    def _add(on: dict[type, list[str]], kinds: tuple[type, ...], test: str) -> None:
        for kind in kinds:
            if kind in on:
                on[kind].append(test)

    def _string(self, keyword: str, value: object, v: str) -> str:
        if keyword == "pattern":
            if type(value) is not str:
                raise Unsupported("pattern")
            return f"{self._name('p', re.compile(value).search)}({v}) is not None"
        return f"len({v}) {'>=' if keyword == 'minLength' else '<='} {_count(value)}"

    def _number(self, keyword: str, value: object, v: str) -> str:
        bound = self._name("n", _bound(value))
        fails = {"minimum": "<", "maximum": ">", "exclusiveMinimum": "<=", "exclusiveMaximum": ">="}
        return f"not {v} {fails[keyword]} {bound}"  # (NaN passes, as in jsonschema)

    def _choice(self, values: list[Any], kind: type, v: str) -> str:
        if any(type(value) not in _SCALARS for value in values) or kind not in _SCALARS:
            return "False"  # lists, mappings, floats: equality as the full check defines it
        same = frozenset(value for value in values if type(value) is kind)  # 1 is not True
        return f"{v} in {self._name('e', same)}" if same else "False"

    def _items(self, schema: Any) -> str:
        name = self._name("a")
        test = self.test(schema, "v")
        self.lines += [f"def {name}(x):", "    for v in x:", f"        if not {test}:"]
        self.lines += ["            return False", "    return True", ""]
        return name

    def _object(self, schema: dict[str, Any], v: str) -> str:
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        required = _names(schema.get("required", []))
        dependent = schema.get("dependentSchemas", {})
        if type(properties) is not dict or type(dependent) is not dict:
            raise Unsupported("properties")
        if not properties and extra is True and not dependent:  # only required keys
            return " and ".join(f"{key!r} in {v}" for key in required) or "True"
        body: list[str] = []
        if extra is False:
            known = self._name("k", frozenset(properties))
            body += [f"    if not {known}.issuperset(x):", "        return False"]
        elif extra is not True and (other := self.test(extra, "v")) != "True":
            known = self._name("k", frozenset(properties))
            body += ["    for k, v in x.items():", f"        if k not in {known} and not {other}:"]
            body += ["            return False"]
        for key, subschema in properties.items():
            if type(key) is not str:
                raise Unsupported("a property name that is not a string")
            test = self.test(subschema, "v")
            if test != "True":
                body += [
                    f"    if {key!r} in x:",
                    f"        v = x[{key!r}]",
                    f"        if not {test}:",
                ]
                body += ["            return False"]
        if len(required) > 4:
            body += [f"    if not {self._name('r', frozenset(required))} <= x.keys():"]
            body += ["        return False"]
        elif required:
            body += [f"    if {' or '.join(f'{key!r} not in x' for key in required)}:"]
            body += ["        return False"]
        for key, subschema in dependent.items():
            test = self.test(subschema, "x")
            body += [f"    if {key!r} in x and not {test}:", "        return False"]
        name = self._name("o")
        self.lines += [f"def {name}(x):", *body, "    return True", ""]
        return f"{name}({v})"


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
