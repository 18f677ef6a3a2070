"""Shortcuts taken on the usual path of validation say exactly what the full checks say."""

from __future__ import annotations

import functools

import pytest
from helpers_cli import invoke
from hypothesis import given, settings
from hypothesis import strategies as st

from opus import Task
from opus.graph import build_graph
from opus.manifest_schema import metadata_schema
from opus.names import name_problem
from opus.specschema import CompiledSchema, compile_schema
from opus.validation import _plain_metadata, _valid_name, check_metadata


@functools.cache
def _schema() -> CompiledSchema:
    return compile_schema(metadata_schema(), "metadata schema")


NAMEISH = st.text(alphabet=st.sampled_from("aZ09._-\n :/é"), min_size=0, max_size=12) | st.text()


@settings(max_examples=300, deadline=None)
@given(NAMEISH)
def test_a_name_the_shortcut_accepts_passes_the_metadata_schema(name: str) -> None:
    schema = _schema()
    if _valid_name(name):
        assert schema.problems({"name": name}, "metadata") == []


@settings(max_examples=150, deadline=None)
@given(NAMEISH.filter(bool) | st.sampled_from(["a\n", "ok\n", "a" * 254, "a" * 253]))
def test_check_metadata_refuses_exactly_the_names_the_rule_refuses(name: str) -> None:
    _, problems = check_metadata([Task("x/v1", "K", {"name": name})])
    assert bool(problems) == (name_problem(name) is not None)
    if _schema().problems({"name": name}, "metadata"):
        assert problems
    for problem in problems:
        assert f"invalid task name {name!r}" in str(problem)


def test_a_too_long_name_is_still_reported() -> None:
    _, problems = check_metadata([Task("x/v1", "K", {"name": "a" * 254})])
    assert len(problems) == 1 and "is 254 characters long (at most 253)" in str(problems[0])


def test_graph_problems_name_the_reference_that_made_them() -> None:
    tasks = [
        Task("x/v1", "K", {"name": "a"}, {"v": "${VAR:missing:out}", "w": "${VAR:a:self}"}),
        Task("x/v1", "K", {"name": "b", "processingScopes": [{"contexts": ["prod"]}]}),
        Task("x/v1", "K", {"name": "c"}, {"v": "${VAR:b:out}"}),
    ]
    problems: list = []
    graph = build_graph(tasks, "apply", "dev", problems)
    assert [str(p) for p in problems] == [
        "task 'a' depends on unknown task 'missing' (spec.v (${VAR:missing:out}))",
        "dependency cycle: a -> a (each task depends on the next)",
        "task 'c' depends on task 'b' (spec.v (${VAR:b:out})), which is out of scope for "
        "command 'apply' in context 'dev'",
    ]
    assert graph.dependencies == {"a": set(), "c": set()}


@pytest.mark.parametrize("entries", [None, [], ""])
def test_no_dependencies_in_any_spelling_means_none(entries) -> None:
    tasks = [Task("x/v1", "K", {"name": "a", "dependencies": entries})]
    assert build_graph(tasks, "apply", "dev").dependencies == {"a": set()}


def test_a_name_with_a_final_newline_is_refused(tmp_path) -> None:
    (tmp_path / "t.yaml").write_text(
        'apiVersion: hello-world/v1\nkind: HelloWorld\nmetadata:\n  name: "ok\\n"\n'
        "spec: {path: out/a.txt, content: hi}\n"
    )
    done = invoke(tmp_path, "validate", "-f", "t.yaml")
    assert done.returncode == 2
    assert "t.yaml:4" in done.stderr
    assert "invalid task name 'ok\\n': contains '\\n'" in done.stderr


# Metadata of every form the schema speaks of, valid and not: the shortcut may accept only
# what the schema accepts (and must accept the usual forms, or it saves nothing).
_text = st.sampled_from(["", "a", "web-1", "x\n", "é", "${VAR:a:b}"])
_scalar = st.one_of(_text, st.integers(-2, 3), st.floats(allow_nan=True), st.booleans(), st.none())
_strings = st.lists(_text, max_size=3) | st.lists(_scalar, max_size=2)
_string_map = st.dictionaries(_text | st.integers(0, 2), _text, max_size=3) | st.dictionaries(
    _text, _scalar, max_size=2
)
_DEPENDENCY_KEYS = st.sampled_from(["tasks", "labels", "contexts", "commands", "other"])


@st.composite
def _dependency(draw: st.DrawFn) -> object:
    """A dependency entry: a valid one with one key set to any value, or anything."""
    entry = draw(st.sampled_from([{"tasks": ["db"]}, {"labels": {"a": "x"}, "contexts": ["p"]}]))
    entry = dict(entry)
    if draw(st.booleans()):
        entry.pop(draw(st.sampled_from(sorted(entry))))
    if draw(st.booleans()):
        entry[draw(_DEPENDENCY_KEYS)] = draw(_strings | _string_map | _scalar)
    return entry if draw(st.integers(0, 5)) else draw(_text | _scalar)


_VALUES = {
    "name": NAMEISH | _scalar,
    "labels": _string_map | _scalar | _strings,
    "annotations": _string_map | _scalar,
    "description": _scalar | _strings,
    "dependencies": st.lists(_dependency(), max_size=3) | _scalar | _string_map,
    "processingScopes": st.lists(st.dictionaries(st.sampled_from(["contexts"]), _strings)),
    "autoRollback": _scalar,
    "concurrencyGroup": _scalar,
    "timeout": _scalar,
    "other": _scalar,
}
_VALID = {
    "name": st.sampled_from(["a", "web-1", "db.main"]),
    "labels": st.dictionaries(st.sampled_from(["a", "tier"]), st.sampled_from(["", "x"])),
    "annotations": st.dictionaries(st.sampled_from(["a", "b"]), st.sampled_from(["", "y"])),
    "description": st.sampled_from(["", "text"]),
    "dependencies": st.lists(_dependency(), max_size=3),  # entries often valid
    "autoRollback": st.booleans(),
    "concurrencyGroup": st.sampled_from(["g", "web"]),
    "timeout": st.sampled_from([1, 0.5, 30]),
}


@st.composite
def METADATA(draw: st.DrawFn) -> dict:
    """Valid metadata (every key the shortcut knows; dependency entries of any form) with,
    most of the time, one key set to a value of any form."""
    optional = {key: value for key, value in _VALID.items() if key != "name"}
    metadata = draw(st.fixed_dictionaries({"name": _VALID["name"]}, optional=optional))
    if draw(st.integers(0, 4)):
        key = draw(st.sampled_from(sorted(_VALUES)))
        metadata[key] = draw(_VALUES[key])
    return metadata


@settings(max_examples=600, deadline=None)
@given(METADATA())
def test_metadata_the_shortcut_accepts_passes_the_schema(metadata: dict) -> None:
    if _plain_metadata(metadata):
        assert _schema().problems(metadata, "metadata") == []


@settings(max_examples=300, deadline=None)
@given(_dependency())
def test_a_dependency_the_shortcut_accepts_passes_the_schema(entry: object) -> None:
    metadata = {"name": "a", "dependencies": [entry]}
    if _plain_metadata(metadata):
        assert _schema().problems(metadata, "metadata") == []


def test_the_shortcut_accepts_the_usual_metadata() -> None:
    usual = {
        "name": "web-1",
        "labels": {"tier": "web"},
        "annotations": {"owner": "ops"},
        "description": "the web server",
        "dependencies": [
            "db",
            {"tasks": ["cache"]},
            {"labels": {"tier": "db"}, "contexts": ["prod"]},
        ],
        "autoRollback": False,
        "concurrencyGroup": "web",
        "timeout": 30,
    }
    assert _plain_metadata(usual)
    for key, bad in [("timeout", 0), ("labels", {"a": 1}), ("dependencies", [{"labels": {}}]),
                     ("concurrencyGroup", ""), ("name", "a\n"), ("extra", 1)]:  # fmt: skip
        assert not _plain_metadata({**usual, key: bad}), key
        assert _schema().problems({**usual, key: bad}, "metadata") or key == "name"
