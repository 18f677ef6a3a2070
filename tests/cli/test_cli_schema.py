"""``opus schema``: one processor's spec schema, or one schema for a whole manifest document
that validates the examples and catches misspelt keys (what an editor would show)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers_cli import invoke
from jsonschema import Draft202012Validator
from opus_hello_world import HelloWorldProcessor

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(REPO.glob("examples/*.yaml")) + sorted(REPO.glob("examples/*/tasks/*.yaml"))


def schema_of(tmp_path: Path, *args: str) -> Any:
    result = invoke(tmp_path, "schema", *args)
    assert result.returncode == 0, result
    return json.loads(result.stdout)


def test_one_processor_schema(tmp_path: Path) -> None:
    assert schema_of(tmp_path, "hello-world/v1") == HelloWorldProcessor.spec_schema
    for api in ("file/v1", "shell/v1", "http/v1"):
        schema = schema_of(tmp_path, api)
        assert schema["additionalProperties"] is False
        Draft202012Validator.check_schema(schema)


def test_unknown_api_version_is_exit_2(tmp_path: Path) -> None:
    result = invoke(tmp_path, "schema", "nope/v1")
    assert result.returncode == 2 and "no processor for apiVersion 'nope/v1'" in result.stderr


@pytest.fixture
def document_validator(tmp_path: Path) -> Draft202012Validator:
    schema = schema_of(tmp_path)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def test_document_schema_accepts_every_example(document_validator: Draft202012Validator) -> None:
    assert len(EXAMPLES) >= 6
    for path in EXAMPLES:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is None:
                continue
            errors = [e.message for e in document_validator.iter_errors(doc)]
            assert errors == [], f"{path}: {errors}"


def test_document_schema_rejects_misspelt_keys(document_validator: Draft202012Validator) -> None:
    good = {
        "apiVersion": "file/v1",
        "kind": "File",
        "metadata": {"name": "f", "labels": {"a": "b"}},
        "spec": {"path": "${VAR:root}/x", "mode": "0644", "force": "${VAR:force}"},
    }
    assert list(document_validator.iter_errors(good)) == []
    assert list(document_validator.iter_errors([good, good])) == []
    for broken in (
        {**good, "spec": {"pth": "x"}},
        {**good, "metadata": {"name": "f", "lables": {}}},
        {**good, "metdata": {"name": "f"}},
        {**good, "metadata": {"name": ".."}},
        {**good, "spec": {"path": "x", "mode": "rw"}},
        {**good, "apiVersion": "hello-world/v1"},  # a file spec is not a hello-world spec
    ):
        assert list(document_validator.iter_errors(broken)), broken
