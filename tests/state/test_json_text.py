"""The JSON text state keeps: the shortcuts write exactly what ``json.dumps`` would."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from opus.state.jsontext import SLICE, dump_json, dump_large_json, dump_names

names = st.lists(st.text(), max_size=5)
scalars = st.none() | st.booleans() | st.integers() | st.text()
values = st.recursive(
    scalars | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(names)
def test_dump_names_is_the_json_of_the_list(items: list[str]) -> None:
    assert dump_names(items) == json.dumps(items, ensure_ascii=False)


@given(st.dictionaries(st.text() | st.integers(), values, max_size=6))
def test_dump_large_json_matches_dump_json_for_small_documents(doc: dict) -> None:
    assert dump_large_json(doc) == dump_json(doc)


def test_dump_large_json_matches_dump_json_for_a_report_sized_document() -> None:
    tasks = {
        f"t{i}": {"status": "done", "started_at": i + 0.5, "error": None if i % 3 else 'é"x'}
        for i in range(SLICE * 3 + 7)
    }
    doc = {
        "version": 1,
        "tasks": tasks,
        "dependencies": {f"t{i}": [f"t{i // 2}"] for i in range(len(tasks))},
    }
    text = dump_large_json(doc)
    assert text == dump_json(doc)
    assert json.loads(text) == doc
