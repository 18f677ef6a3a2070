"""hello-world/v1 against the processor contract (opus.testing.ProcessorContract)."""

from __future__ import annotations

from pathlib import Path

import pytest
from opus_hello_world import HelloWorldProcessor

from opus.testing import ProcessorContract, task_context


class TestHelloWorldContract(ProcessorContract):
    processor = HelloWorldProcessor

    @pytest.fixture(autouse=True)
    def specs(self, opus_workdir: Path) -> None:
        self.spec = {"path": str(opus_workdir / "hello.txt"), "content": "Hello!"}
        self.changed_spec = {"path": str(opus_workdir / "hello.txt"), "content": "Hi again"}

    def tamper(self, ctx):
        Path(ctx.spec["path"]).write_text("edited by hand")

    def exists(self, ctx):
        return Path(ctx.spec["path"]).exists()


def test_write_and_read_back(tmp_path: Path) -> None:
    """The processor on its own: create writes the content, describe reports it."""
    from opus import Task

    task = Task.from_manifest(
        {
            "apiVersion": "hello-world/v1",
            "kind": "Hello",
            "metadata": {"name": "hi"},
            "spec": {"path": str(tmp_path / "a.txt")},
        }
    )
    processor = HelloWorldProcessor()
    result = processor.create(task, task_context(task, "create"))
    assert (tmp_path / "a.txt").read_text() == "Hello World!"
    assert result.outputs["size"] == len("Hello World!")
    described = processor.describe(task, task_context(task, "describe"))
    assert described.details["exists"] is True
