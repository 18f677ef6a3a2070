"""Shortcuts taken on the usual path of validation say exactly what the full checks say."""

from __future__ import annotations

import functools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opus import Task
from opus.graph import build_graph
from opus.manifest_schema import metadata_schema
from opus.specschema import CompiledSchema, compile_schema
from opus.validation import _valid_name, check_metadata


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
@given(NAMEISH.filter(bool))
def test_check_metadata_says_what_the_schema_says_of_a_name(name: str) -> None:
    schema = _schema()
    _, problems = check_metadata([Task("x/v1", "K", {"name": name})])
    assert bool(problems) == bool(schema.problems({"name": name}, "metadata"))
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
