"""The JSON text state keeps: the shortcuts write exactly what ``json.dumps`` would."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping

from hypothesis import given
from hypothesis import strategies as st

from opus import Engine, Plugins, Task, TaskContext, TaskProcessor
from opus.report.document import report_data, report_json
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


class _Made(Mapping):  # type: ignore[type-arg]
    """A mapping that makes its values when read, counting how many are alive at once."""

    def __init__(self, size: int) -> None:
        self.size, self.made = size, 0

    def __getitem__(self, key: str) -> dict:
        self.made += 1
        return {"n": int(key[1:]), "status": "done"}

    def __iter__(self) -> Iterator[str]:
        return (f"t{i}" for i in range(self.size))

    def __len__(self) -> int:
        return self.size


def test_dump_large_json_reads_any_mapping_as_its_dict() -> None:
    for size in (0, 3, SLICE, SLICE * 2 + 1):
        made = _Made(size)
        doc = {"version": 1, "tasks": made}
        expected = dump_json({"version": 1, "tasks": dict(_Made(size))})
        assert dump_large_json(doc) == expected
        assert made.made == size  # each value made once


def test_report_json_is_the_text_of_report_data() -> None:
    class Flaky(TaskProcessor):
        api_version = "flaky/v1"

        def create(self, task: Task, ctx: TaskContext) -> dict:
            if ctx.spec.get("fail"):
                raise RuntimeError("no")
            return {"v": 1}

    size = SLICE + 40

    def manifest(i: int) -> dict:
        metadata: dict = {"name": f"t{i}"}
        if i:
            metadata["dependencies"] = [{"tasks": [f"t{i - 1}"]}]
        return {"apiVersion": "flaky/v1", "kind": "Flaky", "metadata": metadata,
                "spec": {"fail": i == size - 20}}  # fmt: skip

    manifests = [manifest(i) for i in range(size)]
    engine = Engine(state="memory://", plugins=Plugins(entry_points=False))
    engine.register_processor(Flaky)
    with engine:
        graph = engine.validate("apply", manifests)
        result = engine.run("apply", manifests)
        kept = engine.state.run_report(result.run_id)
    assert result.counts()["failed"] == 1 and result.counts()["skipped"] == 19
    document = report_data(result, graph)
    assert report_json(result, graph) == dump_large_json(document)
    assert json.loads(report_json(result, graph)) == document
    assert document["tasks"]["t1"]["status"] == "done"
    assert document["dependencies"]["t1"] == ["t0"] and "t0" not in document["dependencies"]
    assert kept == document  # what the engine wrote as text, read back


def test_a_backend_without_text_reports_gets_the_document() -> None:
    """StateBackend.save_run_report_text's default: the document, through save_run_report."""
    from opus.state.base import StateBackend
    from opus.state.memory import MemoryStateBackend

    class DocumentsOnly(MemoryStateBackend):
        documents: list = []

        def save_run_report(self, run_id: str, report: Mapping) -> None:
            self.documents.append((run_id, report))

        save_run_report_text = StateBackend.save_run_report_text

    backend = DocumentsOnly()
    backend.save_run_report_text("r1", '{"version": 1, "tasks": {"a": {"status": "done"}}}')
    assert backend.documents == [("r1", {"version": 1, "tasks": {"a": {"status": "done"}}})]
