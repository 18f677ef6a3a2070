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
