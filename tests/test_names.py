"""Task and context names: the rule, and the Python API refusing bad contexts and names."""

from __future__ import annotations

import pytest
from support_processors import make_task

from opus import ConfigError, Engine, SpecError, ValidationErrors
from opus.names import check_context, is_valid_name, name_problem


@pytest.mark.parametrize(
    "name", ["a", "Z", "0", "a.b", "web-1", "db_2", "a" * 253, "prod.eu-west-1", "A_b.C-d9"]
)
def test_valid_names(name: str) -> None:
    assert is_valid_name(name) and name_problem(name) is None
    assert check_context(name) == name


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "must not be empty"),
        (".", "must start and end"),
        ("..", "must start and end"),
        ("-a", "must start and end"),
        ("a_", "must start and end"),
        ("a" * 254, "254 characters long"),
        ("a b", "contains ' '"),
        ("a:b", "contains ':'"),
        ("a/b", "contains '/'"),
        ("a\\b", "contains '\\\\'"),
        ("a\n", "contains '\\n'"),
        ("a\x00b", "contains '\\x00'"),
        ("caf\u00e9", "contains 'é'"),
        (3, "must be a string, not int"),
    ],
)
def test_invalid_names(name: object, problem: str) -> None:
    found = name_problem(name)
    assert found is not None and problem in found, found
    with pytest.raises(ConfigError, match="invalid context name"):
        check_context(name)


def test_engine_refuses_bad_contexts_and_task_names(engine: Engine) -> None:
    for call in (engine.validate, engine.run):
        with pytest.raises(ConfigError, match="invalid context name '..'"):
            call("apply", [make_task("a")], "..")
    with pytest.raises(ValidationErrors) as info:
        engine.run("apply", [make_task("a:b"), make_task("ok"), make_task("x y")], "dev")
    assert all(isinstance(e, SpecError) for e in info.value.errors)
    assert [e.task for e in info.value.errors] == ["a:b", "x y"]
    assert engine.state.list_runs() == []
