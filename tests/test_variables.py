from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opus import VariableError
from opus.variables import find_references, load_values, parse_assignments, resolve_spec


def test_whole_string_reference_keeps_type_and_nested_values_resolve() -> None:
    spec = {
        "ports": "${VAR:web:ports}",
        "count": "${VAR:replicas}",
        "nested": {"list": ["a", "${VAR:web:url}/x", {"deep": "${VAR:web:meta}"}]},
    }
    variables = {"web:ports": [80, 443], "replicas": 3, "web:url": "http://h", "web:meta": {"a": 1}}
    resolved = resolve_spec(spec, variables, task_name="t")
    assert resolved == {
        "ports": [80, 443],
        "count": 3,
        "nested": {"list": ["a", "http://h/x", {"deep": {"a": 1}}]},
    }
    assert spec["ports"] == "${VAR:web:ports}"  # the raw spec is untouched


def test_references_inside_text_are_rendered() -> None:
    resolved = resolve_spec(
        {"msg": "n=${VAR:n} l=${VAR:l} ${ENV:OPUS_T_ENV}"},
        {"n": 2, "l": [1, 2]},
        task_name="t",
        environ={"OPUS_T_ENV": "env!"},
    )
    assert resolved["msg"] == "n=2 l=[1, 2] env!"


def test_escaped_reference_is_literal() -> None:
    assert resolve_spec({"a": "$${VAR:x}"}, {}, task_name="t") == {"a": "${VAR:x}"}
    assert find_references({"a": "$${VAR:x}"}) == []


def test_unresolved_output_names_task_path_reference_and_known_outputs() -> None:
    with pytest.raises(VariableError) as err:
        resolve_spec({"a": {"b": ["${VAR:db:port}"]}}, {"db:host": "h"}, task_name="web")
    message = str(err.value)
    assert "task 'web'" in message and "spec.a.b[0]" in message
    assert "${VAR:db:port}" in message and "it has: host" in message


def test_unset_env_and_user_variable_errors() -> None:
    with pytest.raises(VariableError, match="environment variable 'NOPE_X'"):
        resolve_spec({"a": "${ENV:NOPE_X}"}, {}, task_name="t", environ={})
    with pytest.raises(VariableError, match="variable 'missing' is not defined"):
        resolve_spec({"a": "x ${VAR:missing}"}, {}, task_name="t")


def test_find_references_reports_paths_and_tasks() -> None:
    refs = find_references({"a": ["${VAR:t1:k}", "${VAR:u}"], "b": {"c": "${ENV:E}"}})
    assert [(r.source, r.task, r.name, r.path) for r in refs] == [
        ("VAR", "t1", "k", "spec.a[0]"),
        ("VAR", None, "u", "spec.a[1]"),
        ("ENV", None, "E", "spec.b.c"),
    ]
    with pytest.raises(VariableError, match="malformed"):
        find_references({"a": "${VAR:}"})


def test_values_file_with_context_overrides(tmp_path) -> None:
    path = tmp_path / "values.yaml"
    path.write_text("region: eu\nsize: 1\ncontexts:\n  prod:\n    size: 5\n  dev: {}\n")
    assert load_values(str(path), "prod") == {"region": "eu", "size": 5}
    assert load_values(str(path), "dev") == {"region": "eu", "size": 1}
    assert load_values(str(path), "test") == {"region": "eu", "size": 1}


def test_bad_values_file_names_file_and_line(tmp_path) -> None:
    from opus import ConfigError

    path = tmp_path / "values.yaml"
    path.write_text("a: [1,\n")
    with pytest.raises(ConfigError, match=r"values.yaml:\d+: invalid YAML"):
        load_values(str(path), None)
    path.write_text("- a\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_values(str(path), None)


def test_var_assignments_parse_scalars() -> None:
    assert parse_assignments(["a=1", "b=true", "c=text", "d=", "e=x=y"]) == {
        "a": 1,
        "b": True,
        "c": "text",
        "d": "",
        "e": "x=y",
    }
    with pytest.raises(VariableError, match="expected NAME=VALUE"):
        parse_assignments(["novalue"])


# A whole-string ${VAR:...} is read with one lookup, without making a Reference; whatever
# its body (spaces around its parts, an empty part, more colons) that lookup must use the
# variable the reference names (Reference.variable), not, say, the body as written.
BODY_PART = st.text(alphabet=st.sampled_from("ab: \t-"), max_size=6)


@settings(max_examples=400, deadline=None)
@given(body=BODY_PART, value=st.integers())
def test_whole_reference_looks_up_the_variable_its_reference_names(body: str, value: int) -> None:
    text = "${VAR:" + body + "}"
    try:
        [ref] = find_references({"x": text})
    except (ValueError, VariableError):
        return  # not one well-formed reference: nothing to look up
    decoy = {body: "decoy"} if body != ref.variable else {}  # the body read as a name
    resolved = resolve_spec({"x": text}, {**decoy, ref.variable: value}, task_name="t")
    assert resolved == {"x": value}
    with pytest.raises(VariableError, match=r"spec\.x"):
        resolve_spec({"x": text}, {ref.variable + "-other": value}, task_name="t")
