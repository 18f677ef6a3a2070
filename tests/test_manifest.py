from __future__ import annotations

import pytest

from opus import ManifestError, Task, ValidationErrors
from opus.manifest import load_tasks

pytestmark = pytest.mark.usefixtures("yaml_loader")


def write(path, text: str):
    path.write_text(text)
    return path


def test_loads_files_and_directories_multi_document(tmp_path) -> None:
    (tmp_path / "sub").mkdir()
    write(
        tmp_path / "a.yaml",
        "apiVersion: x/v1\nkind: K\nmetadata: {name: a}\nspec: {v: 1}\n"
        "---\n---\napiVersion: x/v1\nkind: K\nmetadata: {name: b}\n",
    )
    write(tmp_path / "sub" / "c.yml", "- apiVersion: x/v1\n  kind: K\n  metadata: {name: c}\n")
    write(tmp_path / "notes.txt", "not yaml: [")
    tasks = load_tasks([tmp_path])
    assert [t.name for t in tasks] == ["a", "b", "c"]
    assert tasks[0].spec == {"v": 1} and tasks[1].spec == {}
    assert tasks[1].source.endswith("a.yaml:7")


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ("kind: K\nmetadata: {name: a}\n", "apiVersion", "missing 'apiVersion'"),
        ("apiVersion: x/v1\nmetadata: {name: a}\n", "kind", "missing 'kind'"),
        ("apiVersion: x/v1\nkind: K\n", "metadata.name", "missing 'metadata.name'"),
        (
            "apiVersion: x/v1\nkind: K\nmetadata: {name: a}\nspec: [1]\n",
            "spec",
            "must be a mapping",
        ),
        ("apiVersion: x/v1\nkind: K\nmetadata: {name: a}\nspek: {}\n", "spek", "unknown top-level"),
    ],
)
def test_invalid_manifests_name_file_task_and_field(tmp_path, text, field, message) -> None:
    path = write(tmp_path / "bad.yaml", text)
    with pytest.raises(ManifestError) as err:
        load_tasks([path])
    assert err.value.field == field
    assert message in str(err.value) and "bad.yaml:1" in str(err.value)


def test_yaml_syntax_error_has_line(tmp_path) -> None:
    path = write(tmp_path / "broken.yaml", "apiVersion: x/v1\nkind: K\nmetadata: {name: a\n")
    with pytest.raises(ManifestError) as err:
        load_tasks([path])
    assert err.value.line == 4 and "invalid YAML" in str(err.value)


def test_every_problem_in_every_file_is_reported(tmp_path) -> None:
    write(tmp_path / "a.yaml", "kind: K\nmetadata: {name: a}\n---\napiVersion: x\nkind: K\n")
    write(tmp_path / "b.yaml", "{")
    with pytest.raises(ValidationErrors) as err:
        load_tasks([tmp_path])
    assert len(err.value.errors) == 3


def test_missing_path_and_empty_directory(tmp_path) -> None:
    with pytest.raises(ManifestError, match="no such file"):
        load_tasks([tmp_path / "nope.yaml"])
    with pytest.raises(ManifestError, match="no task manifests found"):
        load_tasks([tmp_path])


def test_python_api_tasks_get_a_stable_id_without_a_name() -> None:
    a = Task("x/v1", "K", {}, {"v": 1})
    b = Task("x/v1", "K", {}, {"v": 1})
    c = Task("x/v1", "K", {}, {"v": 2})
    assert a.name == b.name != c.name and a.name.startswith("k-")
    with pytest.raises(ManifestError, match="spec must be a mapping"):
        Task("x/v1", "K", {"name": "z"}, ["no"])  # type: ignore[arg-type]
    with pytest.raises(ManifestError, match="apiVersion"):
        Task("", "K", {"name": "z"}, {})
