"""http/v1 (download mode) against the processor contract, with the local test server."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from http_local_server import Reply, serve
from opus_http import HttpProcessor

from opus.testing import ProcessorContract

V1, V2 = b"body { color: red; }\n", b"body { color: blue; }\n"


class TestHttpDownloadContract(ProcessorContract):
    processor = HttpProcessor

    @pytest.fixture(autouse=True)
    def specs(self, opus_workdir: Path) -> Iterator[None]:
        with serve() as server:
            path = str(opus_workdir / "assets" / "app.css")
            fast = {"backoff": 0.01, "timeout": 5}
            self.spec = {
                "url": server.route("/v1.css", Reply(200, V1)),
                "path": path,
                "sha256": hashlib.sha256(V1).hexdigest(),
                **fast,
            }
            self.changed_spec = {
                "url": server.route("/v2.css", Reply(200, V2)),
                "path": path,
                "sha256": hashlib.sha256(V2).hexdigest(),
                **fast,
            }
            yield

    def tamper(self, ctx):
        Path(ctx.spec["path"]).write_bytes(b"tampered")

    def exists(self, ctx):
        return Path(ctx.spec["path"]).exists()
