"""shell/v1 against the processor contract, managing a temporary file with commands."""

from __future__ import annotations

from pathlib import Path

import pytest
from opus_shell import ShellProcessor

from opus.testing import ProcessorContract


def file_spec(directory: Path, content: str) -> dict[str, str]:
    """Commands that manage ``resource.txt`` holding ``content`` in ``directory``."""
    return {
        "cwd": str(directory),
        "create": f"printf %s {content} > resource.txt",
        "update": f"printf %s {content} > resource.txt",
        "delete": "rm -f resource.txt",
        "check": f'test "$(cat resource.txt)" = {content}',
        "rollback": "rm -f resource.txt",
    }


class TestShellContract(ProcessorContract):
    processor = ShellProcessor

    @pytest.fixture(autouse=True)
    def specs(self, opus_workdir: Path) -> None:
        self.spec = file_spec(opus_workdir, "one")
        self.changed_spec = file_spec(opus_workdir, "two")
        failing = file_spec(opus_workdir, "three")
        failing["create"] = "printf %s three > resource.txt && exit 7"  # fails part-way
        self.failing_spec = failing

    def tamper(self, ctx):
        (Path(ctx.spec["cwd"]) / "resource.txt").write_text("changed by hand")

    def exists(self, ctx):
        return (Path(ctx.spec["cwd"]) / "resource.txt").exists()
