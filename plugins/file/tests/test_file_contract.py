"""file/v1 against the processor contract (opus.testing.ProcessorContract)."""

from __future__ import annotations

from pathlib import Path

import pytest
from opus_file import FileProcessor

from opus.testing import ProcessorContract


class TestFileContract(ProcessorContract):
    processor = FileProcessor

    @pytest.fixture(autouse=True)
    def specs(self, opus_workdir: Path) -> None:
        path = str(opus_workdir / "conf" / "app.conf")
        self.spec = {"path": path, "content": "port=80\n", "mode": "0640"}
        self.changed_spec = {"path": path, "content": "port=8080\n", "mode": "0640"}

    def tamper(self, ctx):
        Path(ctx.spec["path"]).write_text("port=1\n")

    def exists(self, ctx):
        return Path(ctx.spec["path"]).exists()
