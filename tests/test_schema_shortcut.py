"""The plain-Python spec check (opus.schemashortcut) accepts nothing the full check refuses.

The full check is jsonschema's draft 2020-12 validator where a whole-string ``${...}``
reference satisfies every keyword (``CompiledSchema.thorough``): whatever the shortcut
calls valid, it must find no problem in. Checked with Hypothesis on the first-party
processors' schemas (specs of every form, valid and broken) and on generated schemas.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

import pytest
from helpers_cli import cli_env, invoke
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from opus import Plugins
from opus.schemashortcut import plain_checker
from opus.specschema import _tolerant_validator, compile_schema, spec_problems


@functools.cache
def _plugin_schemas() -> dict[str, Any]:
    processors = Plugins().processors().items()
    return {api: proc.spec_schema for api, proc in processors if proc.spec_schema}


def _full_check_passes(schema: Any, instance: Any) -> bool:
    return not list(_tolerant_validator()(schema).iter_errors(instance))


# -- the first-party schemas ----------------------------------------------------------------

_WORDS = [
    *["", "x", "0644", "0o755", " 644 ", "99999", "GET", "POST", "file", "directory"],
    *["http://h/x", "HTTPS://h", "ftp://h", "a" * 64, "g" * 64, "echo hi", "\n"],
    *["${VAR:v}", "${ENV:HOME}", "${VAR:t:out}", "${VAR:v}0", "$${VAR:v}", "${v}"],
]
_KEYS = [
    *["value", "sensitive", "url", "json", "body", "method", "headers", "expect_status"],
    *["path", "template", "create", "x", "A"],
]
_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([-1, 0, 1, 2, 30, 99, 100, 200, 599, 600, 4095, 4096]),
    st.sampled_from([0.0, 0.5, 1.0, 200.0, -0.5, math.inf, math.nan]),
    st.sampled_from(_WORDS),
)
_VALUE = st.recursive(
    _SCALAR,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(_KEYS), inner, max_size=3)
    ),
    max_leaves=8,
)

#: A valid spec of each first-party processor, of the forms the manifests use.
_USUAL: dict[str, list[dict[str, Any]]] = {
    "hello-world/v1": [{"path": "out/a.txt", "content": "hi"}, {"path": "${VAR:p}"}],
    "file/v1": [
        {"path": "/tmp/x", "mode": "0644", "content": "x", "makeDirs": True},
        {"path": "${VAR:root}", "type": "directory", "mode": 493, "force": False},
        {"path": "t", "template": True, "vars": {"a": 1}, "content": None},
    ],
    "shell/v1": [
        {"create": ["echo a", "echo b"], "delete": "echo d", "env": {"A": "1"}, "timeout": 30},
        {"create": "x", "env": {"B": {"value": "${VAR:s}", "sensitive": True}, "C": None}},
        {"create": "x", "timeout": "${VAR:t}", "sensitiveEnv": ["B"], "rawReferences": True},
    ],
    "http/v1": [
        {
            "url": "http://127.0.0.1:9/items",
            "headers": {"Accept": "application/json"},
            "retries": 2,
            "create": {"method": "POST", "json": {"n": 1}, "expect_status": [200, 201]},
            "delete": {"method": "DELETE", "url": "http://127.0.0.1:9/items/1"},
        },
        {"url": "https://h/f", "path": "out/f", "sha256": "a" * 64, "mode": "0644"},
        {"create": {"url": "${VAR:u}", "body": "text", "expect_status": 201}},
    ],
}


def test_every_first_party_schema_has_a_shortcut_that_accepts_its_usual_specs() -> None:
    schemas = _plugin_schemas()
    assert sorted(schemas) == sorted(_USUAL)
    for api, schema in schemas.items():
        check = plain_checker(schema)
        assert check is not None, api
        for spec in _USUAL[api]:
            assert _full_check_passes(schema, spec), (api, spec)
            assert check(spec), (api, spec)


@st.composite
def _spec(draw: st.DrawFn, api: str) -> Any:
    """A usual spec with keys set to values of any form, or removed; or any value."""
    schema = _plugin_schemas()[api]
    spec = dict(draw(st.sampled_from(_USUAL[api])))
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from([*sorted(schema["properties"]), "pth"]))
        if draw(st.integers(0, 4)):
            spec[key] = draw(_VALUE)
        else:
            spec.pop(key, None)
    return spec if draw(st.integers(0, 20)) else draw(_VALUE)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_shortcut_accepts_no_first_party_spec_the_full_check_refuses(
    data: st.DataObject,
) -> None:
    api = data.draw(st.sampled_from(sorted(_USUAL)))
    schema = _plugin_schemas()[api]
    spec = data.draw(_spec(api))
    check = plain_checker(schema)
    assert check is not None
    if check(spec):
        assert _full_check_passes(schema, spec), (api, spec)


def test_specs_it_refuses_get_the_full_checks_messages() -> None:
    schema = _plugin_schemas()["http/v1"]
    spec = {"url": "ftp://h", "create": {"mehtod": "GET"}, "retries": "${VAR:n}"}
    assert not plain_checker(schema)(spec)  # type: ignore[misc]
    assert [f"{e.path}: {e.reason}" for e in spec_problems(schema, spec)] == [
        "spec.url: must be an http:// or https:// URL",
        "spec.create.mehtod: unknown key 'mehtod' (did you mean 'method'?)",
    ]


# -- any schema of the keywords it knows -----------------------------------------------------

_TYPE_NAMES = ["object", "array", "string", "integer", "number", "boolean", "null"]
_NAMES = ["a", "b", "c"]


def _schemas(leaf: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    def grow(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        keyword = st.one_of(
            st.tuples(st.just("properties"), st.dictionaries(st.sampled_from(_NAMES), inner)),
            st.tuples(st.just("additionalProperties"), inner),
            st.tuples(st.just("items"), inner),
            st.tuples(st.just("allOf"), st.lists(inner, min_size=1, max_size=2)),
            st.tuples(st.just("anyOf"), st.lists(inner, min_size=1, max_size=2)),
            st.tuples(st.just("not"), inner),
            st.tuples(st.just("dependentSchemas"), st.dictionaries(st.sampled_from(_NAMES), inner)),
        )
        return st.builds(dict, st.lists(keyword, max_size=3)) | leaf

    return st.recursive(leaf, grow, max_leaves=6)


_LEAF_KEYWORD = st.one_of(
    st.tuples(
        st.just("type"),
        st.sampled_from(_TYPE_NAMES)
        | st.lists(st.sampled_from(_TYPE_NAMES), min_size=1, max_size=3, unique=True),
    ),
    st.tuples(
        st.sampled_from(["minLength", "maxLength", "minItems", "maxItems"]), st.integers(0, 3)
    ),
    st.tuples(
        st.sampled_from(["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"]),
        st.sampled_from([0, 1, 2.5, -1]),
    ),
    st.tuples(st.just("pattern"), st.sampled_from(["^a", "b$", "^[a-c]+$", "\\d"])),
    st.tuples(st.just("required"), st.lists(st.sampled_from(_NAMES), max_size=2, unique=True)),
    st.tuples(
        st.just("enum"),
        st.lists(st.sampled_from(["a", "", 1, 0, True, False, None, 1.0, [1]]), min_size=1),
    ),
    st.tuples(st.just("const"), st.sampled_from(["a", 1, True, None, 0, 1.0, {"a": 1}])),
    st.tuples(st.just("$ref"), st.just("#/$defs/d")),
    st.tuples(st.just("additionalProperties"), st.booleans()),
    st.tuples(st.just("description"), st.just("text")),
    st.tuples(st.just("x-opus-message"), st.just("message")),
)
_LEAF = st.builds(dict, st.lists(_LEAF_KEYWORD, max_size=3)) | st.booleans()
_DEF = st.builds(dict, st.lists(_LEAF_KEYWORD.filter(lambda k: k[0] != "$ref"), max_size=2))

_INSTANCE = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-2, 3),
        st.sampled_from([0.0, 1.0, 2.5, -1.5, math.nan, math.inf]),
        st.sampled_from(["", "a", "b", "abc", "1", "${VAR:x}", "${VAR:x}a", "d\n"]),
    ),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from([*_NAMES, "d"]), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_schemas(_LEAF), _DEF, st.lists(_INSTANCE, min_size=1, max_size=4))
def test_on_any_schema_of_its_keywords_the_shortcut_accepts_nothing_the_full_check_refuses(
    schema: Any, definition: dict[str, Any], instances: list[Any]
) -> None:
    if not isinstance(schema, dict):
        schema = {"allOf": [schema]}
    schema = {**schema, "$defs": {"d": definition}}
    check = plain_checker(schema)
    if check is None:
        return
    Draft202012Validator.check_schema(schema)  # a schema it takes is well formed
    for instance in instances:
        if check(instance):
            assert _full_check_passes(schema, instance), (schema, instance)


def test_the_shortcut_does_find_valid_instances_of_generated_schemas() -> None:
    """(The property above is not vacuous.)"""
    schema = {
        "type": "object",
        "properties": {"a": {"type": ["integer", "string"], "minimum": 1, "pattern": "^x"}},
        "required": ["a"],
        "additionalProperties": False,
        "dependentSchemas": {"a": {"anyOf": [{"required": ["a"]}, {"not": {}}]}},
    }
    check = plain_checker(schema)
    assert check is not None
    assert check({"a": 1}) and check({"a": "xy"}) and check({"a": "${VAR:a}"})
    for instance in ({"a": 0}, {"a": "y"}, {"a": True}, {}, {"a": 1, "b": 2}, [], "${VAR:a}x"):
        assert not check(instance), instance
        assert not _full_check_passes(schema, instance), instance
    many = {"required": list("abcdef")}  # (more than a few names: tested as one set)
    check = plain_checker(many)
    assert check is not None and check(dict.fromkeys("abcdefg")) and check(3)
    assert not check(dict.fromkeys("abcde")) and not _full_check_passes(
        many, dict.fromkeys("abcde")
    )


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "patternProperties": {"^a": {}}},
        {"oneOf": [{"type": "string"}]},
        {"type": "strnig"},
        {"type": "string", "format": "email"},
        {"$ref": "other.json#/x"},
        {"$defs": {"n": {"items": {"$ref": "#/$defs/n"}}}, "$ref": "#/$defs/n"},
        {"$schema": "http://json-schema.org/draft-07/schema#"},
        {"minLength": -1},
        {"minLength": 1.5},
        {"required": "a"},
        {"allOf": []},
        {"properties": {"a": 3}},
        {"if": {"type": "string"}, "then": {"minLength": 1}},
        {"description": 3},
        {"$defs": {"unused": {"type": "nothing"}}},
    ],
)
def test_anything_unusual_gets_no_shortcut(schema: dict[str, Any]) -> None:
    assert plain_checker(schema) is None


def test_a_schema_nested_too_deeply_for_the_parser_gets_no_shortcut() -> None:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(70):  # (jsonschema still handles it; 100 is too deep for it too)
        schema = {"anyOf": [schema, {"type": "integer"}]}
    assert plain_checker(schema) is None
    assert spec_problems(schema, "x") == [] and spec_problems(schema, 1.5)  # the full check


def test_a_schema_it_handles_needs_neither_library_until_a_spec_fails_it() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    compiled = compile_schema(schema, "test")
    assert compiled.plain is not None and compiled._fast is None
    assert compiled.problems({"n": 1}) == [] and compiled._fast is None
    assert compiled.problems({"n": "x"}) == [("spec.n", "must be a whole number, not str 'x'")]


def test_validate_of_first_party_specs_imports_no_schema_library(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(
        "apiVersion: file/v1\nkind: File\nmetadata: {name: a}\n"
        "spec: {path: out/a, mode: '0644', content: x}\n---\n"
        "apiVersion: shell/v1\nkind: Shell\nmetadata: {name: b}\n"
        "spec: {create: [echo hi], timeout: '${VAR:t}'}\n---\n"
        "apiVersion: http/v1\nkind: Http\nmetadata: {name: c}\n"
        "spec: {url: 'http://127.0.0.1:9/x', create: {method: POST, json: {a: 1}}}\n"
    )
    code = (
        "import sys; from opus.cli import main\n"
        "try:\n    main(sys.argv[1:])\n"
        "except SystemExit as exc:\n"
        "    print(exc.code, 'fastjsonschema' in sys.modules, 'jsonschema' in sys.modules)\n"
    )
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", code, "validate", "-f", "t.yaml", "--var", "t=5"],
        cwd=tmp_path,
        env=cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.split()[-3:] == ["0", "False", "False"], done.stdout + done.stderr
    (tmp_path / "t.yaml").write_text(
        (tmp_path / "t.yaml").read_text().replace("'${VAR:t}'", "-1").replace("POST", "''")
    )
    bad = invoke(tmp_path, "validate", "-f", "t.yaml")
    assert bad.returncode == 2
    assert "t.yaml:9, task 'b', field 'spec.timeout': must be > 0, not -1" in bad.stderr
    assert (
        "t.yaml:14, task 'c', field 'spec.create.method': must be at least 1 characters long"
        in bad.stderr
    )


def test_the_shortcuts_code_is_compiled_once_per_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opus import schemacache

    monkeypatch.setenv("OPUS_CACHE_DIR", str(tmp_path / "cache"))
    schema = _plugin_schemas()["shell/v1"]
    good, bad = _USUAL["shell/v1"][0], {"create": ""}
    first = plain_checker(schema)
    assert first is not None and first(good) and not first(bad)
    [path] = (tmp_path / "cache" / "schemas").glob("*.bin")

    def no_compiling(*args: object) -> None:
        raise AssertionError("compiled again")

    monkeypatch.setattr(schemacache, "compile", no_compiling, raising=False)
    again = plain_checker(dict(schema))  # an equal schema: its code comes from the file
    assert again is not None and again(good) and not again(bad)
    monkeypatch.undo()
    monkeypatch.setenv("OPUS_CACHE_DIR", str(tmp_path / "cache"))
    path.write_bytes(b"\x00damaged")
    third = plain_checker(schema)  # compiled again, and the file rewritten
    assert third is not None and third(good) and not third(bad)
    assert path.read_bytes() != b"\x00damaged"


@settings(max_examples=400, deadline=None)
@given(
    st.text(alphabet=st.sampled_from("aZ09._-\n :/é\x00"), max_size=12)
    | st.text()
    | st.sampled_from(["a" * 253, "a" * 254, "a\n", "-a", "a-", "a..b"])
)
def test_the_metadata_shortcuts_name_test_is_the_name_rule(name: str) -> None:
    from opus.names import name_problem
    from opus.validation import _plain_metadata, _valid_name

    assert _valid_name(name) == (name_problem(name) is None)
    assert _plain_metadata({"name": name}) == _valid_name(name)
