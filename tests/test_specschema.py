"""Spec schemas: checked before anything runs, references stand for any type, every
problem listed once with "did you mean"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support_processors import RecordingProcessor

from opus import (
    Engine,
    OpusError,
    PluginError,
    Plugins,
    SpecError,
    Task,
    ValidationErrors,
    validate_spec,
)
from opus.specschema import compile_schema, is_whole_reference, spec_problems

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["path"],
    "properties": {
        "path": {"type": "string", "minLength": 1},
        "count": {"type": "integer", "minimum": 1},
        "items": {"type": "array", "items": {"type": "integer"}},
        "enabled": {"type": "boolean"},
        "mode": {"enum": ["fast", "slow"]},
        "nested": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"depth": {"type": "integer"}},
        },
        "fail_on": {"type": "array"},
        "value": {},
    },
}


class SchemaProcessor(RecordingProcessor):
    api_version = "schema/v1"
    spec_schema = SCHEMA


def messages(errors: list[SpecError]) -> list[str]:
    return [f"{e.path}: {e.reason}" for e in errors]


def test_whole_string_references_stand_for_any_type() -> None:
    spec = {
        "path": "${VAR:path}",
        "count": "${VAR:count}",
        "items": "${VAR:items}",
        "enabled": "${ENV:ENABLED}",
        "mode": "${VAR:mode}",
        "nested": "${VAR:producer:nested}",
    }
    assert spec_problems(SCHEMA, spec) == []
    # inside a list too, and a reference in an integer list
    assert spec_problems(SCHEMA, {"path": "p", "items": [1, "${VAR:n}", 3]}) == []
    # a reference that is only part of a string is a string
    found = messages(spec_problems(SCHEMA, {"path": "p", "count": "${VAR:n}0"}))
    assert found == ["spec.count: must be a whole number, not str '${VAR:n}0'"]
    # the escaped form is a literal string, not a reference
    assert not is_whole_reference("$${VAR:x}")
    found = messages(spec_problems(SCHEMA, {"path": "p", "enabled": "$${VAR:x}"}))
    assert found == ["spec.enabled: must be true or false, not str '$${VAR:x}'"]


def test_every_problem_is_listed_once_with_did_you_mean() -> None:
    spec = {
        "pth": "x",
        "count": 0,
        "items": [1, "two", True],
        "enabled": "yes",
        "mode": "fsat",
        "nested": {"detph": 3},
    }
    assert messages(spec_problems(SCHEMA, spec)) == [
        "spec.pth: unknown key 'pth' (did you mean 'path'?)",
        "spec.count: must be >= 1, not 0",
        "spec.items[1]: must be a whole number, not str 'two'",
        "spec.items[2]: must be a whole number, not a boolean",
        "spec.enabled: must be true or false, not str 'yes'",
        "spec.mode: must be one of 'fast', 'slow', not 'fsat' (did you mean 'fast'?)",
        "spec.nested.detph: unknown key 'detph' (did you mean 'depth'?)",
    ]
    assert messages(spec_problems(SCHEMA, {})) == ["spec.path: required key is missing"]


def test_validate_spec_raises_all_problems_and_accepts_none() -> None:
    validate_spec(None, {"anything": 1})
    with pytest.raises(SpecError, match="spec.path"):
        validate_spec(SCHEMA, {"path": 3}, task="t")
    with pytest.raises(ValidationErrors) as info:
        validate_spec(SCHEMA, {"path": 3, "count": "x"}, task="t")
    assert len(info.value.errors) == 2


def test_an_invalid_schema_is_a_plugin_error() -> None:
    with pytest.raises(PluginError, match="spec_schema of bad/v1: invalid JSON Schema"):
        compile_schema({"type": "no-such-type"}, "spec_schema of bad/v1")


def test_fast_check_never_accepts_what_the_full_check_refuses() -> None:
    compiled = compile_schema(SCHEMA)
    samples: list[Any] = [
        {"path": "p"},
        {"path": "${VAR:p}", "count": "${VAR:c}"},
        {"path": "p", "count": 1.5},
        {"path": "p", "count": True},
        {"path": "p", "items": ["${VAR:x}", 2]},
        {"path": "p", "nested": {"depth": "${VAR:d}", "x": 1}},
        {"path": "p", "mode": "${VAR:m} "},
        {"path": 1},
        {"path": "p", "value": object()},
    ]
    for sample in samples:
        fast = compiled.fast.is_valid(sample)
        full = not list(compiled.thorough.iter_errors(sample))
        assert not fast or full, sample


def make_engine(tmp_path: Path) -> tuple[Engine, SchemaProcessor]:
    engine = Engine(state=f"sqlite:///{tmp_path / 'state.db'}", plugins=Plugins(entry_points=False))
    processor = SchemaProcessor()
    engine.register_processor(processor)
    return engine, processor


def test_run_and_validate_refuse_bad_specs_before_anything_runs(tmp_path: Path) -> None:
    engine, processor = make_engine(tmp_path)
    tasks = [
        Task("schema/v1", "T", {"name": "good"}, {"path": "a"}, source="f.yaml:1"),
        Task("schema/v1", "T", {"name": "bad"}, {"pth": "b", "count": "x"}, source="f.yaml:7"),
    ]
    for call in (engine.validate, engine.run):
        with pytest.raises(ValidationErrors) as info:
            call("apply", tasks, "dev")
        assert [str(e) for e in info.value.errors] == [
            "f.yaml:7, task 'bad', field 'spec.pth': unknown key 'pth' (did you mean 'path'?)",
            "f.yaml:7, task 'bad', field 'spec.count': must be a whole number, not str 'x'",
        ]
    with pytest.raises(OpusError):
        engine.run("plan", tasks, "dev")
    assert processor.calls == []
    assert engine.state.list_runs() == [] and engine.state.get_lock("dev") is None
    engine.close()


def test_references_resolve_and_are_checked_again_by_the_processor(tmp_path: Path) -> None:
    engine, processor = make_engine(tmp_path)
    task = Task(
        "schema/v1",
        "T",
        {"name": "t"},
        {"path": "${VAR:p}", "count": "${VAR:n}", "items": "${VAR:xs}", "enabled": "${VAR:on}"},
    )
    variables = {"p": "file", "n": 3, "xs": [1, 2], "on": False}
    result = engine.run("apply", [task], "dev", variables)
    assert result.ok
    assert processor.calls[0][2] == {"path": "file", "count": 3, "items": [1, 2], "enabled": False}
    # a resolved value of the wrong type is found by validate_spec on the resolved spec
    with pytest.raises(SpecError, match="field 'spec.count': must be a whole number"):
        validate_spec(SCHEMA, {"path": "p", "count": "three"}, task="t")
    engine.close()


def test_processors_without_a_schema_are_not_checked(tmp_path: Path) -> None:
    engine = Engine(state="memory://", plugins=Plugins(entry_points=False))
    engine.register_processor(RecordingProcessor())
    graph = engine.validate("apply", [Task("test/v1", "T", {"name": "t"}, {"whatever": [1]})])
    assert list(graph.tasks) == ["t"]
    engine.close()


def _plugin_schemas() -> dict[str, Any]:
    plugins = Plugins()
    return {api: proc.spec_schema for api, proc in plugins.processors().items() if proc.spec_schema}


_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-5, 700),
        st.sampled_from(["", "x", "0644", "9999", "http://h/x", "ftp://h", "${VAR:v}", "a" * 64]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(["value", "sensitive", "url", "json", "body", "method", "x"]),
            inner,
            max_size=3,
        ),
    ),
    max_leaves=6,
)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_fast_check_agrees_with_jsonschema_on_plugin_schemas(data: st.DataObject) -> None:
    """The fast path (fastjsonschema, draft 7 spelling) never accepts a spec that the draft
    2020-12 reference-tolerant check refuses, for the first-party schemas."""
    schemas = _plugin_schemas()
    api = data.draw(st.sampled_from(sorted(schemas)))
    schema = schemas[api]
    keys = sorted(schema["properties"])
    spec = data.draw(st.dictionaries(st.sampled_from([*keys, "pth"]), _VALUES, max_size=5))
    compiled = compile_schema(schema)
    if compiled.fast.is_valid(spec):
        assert list(compiled.thorough.iter_errors(spec)) == [], (api, spec)
