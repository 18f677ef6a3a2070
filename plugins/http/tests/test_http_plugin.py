"""Tests of the http/v1 processor against a local http.server on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import json
import re
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import opus_http
import pluggy
import pytest
from http_local_server import LocalServer, Reply, serve
from opus_http import HttpProcessor, HttpTaskError

from opus import OpusError, Task, TaskContext, TaskState
from opus.testing import task_context

CSS = b"body { color: #333; }\n"
CSS_SHA = hashlib.sha256(CSS).hexdigest()
FAST = {"backoff": 0.01, "timeout": 5}


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with serve() as local:
        yield local


@pytest.fixture
def proc() -> HttpProcessor:
    return HttpProcessor()


def make(name: str, spec: dict) -> Task:
    return Task(api_version="http/v1", kind="Http", metadata={"name": name}, spec=spec)


def ctx_for(task: Task, action: str, state: TaskState | None = None, **kw) -> TaskContext:
    return task_context(task, action, state=state, context="dev", run_id="r1", **kw)


def leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.endswith(".part")]


def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


# -- download mode ------------------------------------------------------------------------


def test_download_writes_file_and_reports_outputs(proc, server: LocalServer, tmp_path) -> None:
    headers = {
        "Content-Type": "text/css",
        "ETag": '"v1"',
        "Last-Modified": "Wed, 01 May 2024 10:00:00 GMT",
        "X-Other": "dropped",
    }
    url = server.route("/app.css", Reply(200, CSS, headers))
    target = tmp_path / "assets" / "app.css"
    task = make("css", {"url": url, "path": str(target), "sha256": CSS_SHA, "mode": "0640", **FAST})
    result = proc.create(task, ctx_for(task, "create"))
    assert target.read_bytes() == CSS
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    out = result.outputs
    assert out["path"] == str(target) and out["sha256"] == CSS_SHA and out["size"] == len(CSS)
    assert out["status"] == 200
    assert out["headers"] == {
        "content-type": "text/css",
        "etag": '"v1"',
        "content-length": str(len(CSS)),
        "last-modified": "Wed, 01 May 2024 10:00:00 GMT",
    }
    assert result.resource_checksum == CSS_SHA
    assert leftovers(target.parent) == []


def test_download_is_skipped_when_file_already_has_the_checksum(proc, server, tmp_path) -> None:
    url = server.route("/app.css", Reply(200, CSS))
    target = tmp_path / "app.css"
    target.write_bytes(CSS)
    task = make("css", {"url": url, "path": str(target), "sha256": CSS_SHA, **FAST})
    result = proc.update(task, ctx_for(task, "update"))
    assert server.hits("/app.css") == []
    assert result.outputs["status"] is None and result.outputs["sha256"] == CSS_SHA


def test_checksum_mismatch_keeps_previous_file(proc, server, tmp_path) -> None:
    url = server.route("/app.css", Reply(200, b"tampered"))
    target = tmp_path / "app.css"
    target.write_bytes(b"previous")
    task = make("css", {"url": url, "path": str(target), "sha256": CSS_SHA, **FAST})
    with pytest.raises(HttpTaskError, match="expected " + CSS_SHA):
        proc.update(task, ctx_for(task, "update"))
    assert target.read_bytes() == b"previous"
    assert leftovers(tmp_path) == []
    assert len(server.hits("/app.css")) == 1, "a checksum mismatch is not retried"


def test_retries_5xx_with_backoff_then_succeeds(proc, server, tmp_path) -> None:
    url = server.route("/flaky", Reply(503, b"busy"), Reply(502), Reply(200, CSS))
    task = make(
        "f", {"url": url, "path": str(tmp_path / "f"), "retries": 3, "backoff": 0.2, "timeout": 5}
    )
    started = time.monotonic()
    result = proc.create(task, ctx_for(task, "create"))
    assert time.monotonic() - started >= 0.2 + 0.4, "waits backoff, then twice the backoff"
    assert len(server.hits("/flaky")) == 3
    assert result.outputs["status"] == 200 and (tmp_path / "f").read_bytes() == CSS


def test_gives_up_after_the_retries(proc, server, tmp_path) -> None:
    url = server.route("/down", Reply(500, b"boom"))
    task = make("d", {"url": url, "path": str(tmp_path / "d"), "retries": 2, **FAST})
    with pytest.raises(HttpTaskError, match=r"failed after 3 attempt\(s\): HTTP 500") as info:
        proc.create(task, ctx_for(task, "create"))
    assert info.value.status == 500
    assert len(server.hits("/down")) == 3
    assert not (tmp_path / "d").exists() and leftovers(tmp_path) == []


def test_client_errors_are_not_retried(proc, server, tmp_path) -> None:
    url = server.route("/missing", Reply(404, b"no such asset"))
    task = make("m", {"url": url, "path": str(tmp_path / "m"), "retries": 3, **FAST})
    with pytest.raises(HttpTaskError, match="HTTP 404.*no such asset") as info:
        proc.create(task, ctx_for(task, "create"))
    assert info.value.status == 404 and len(server.hits("/missing")) == 1


def test_dropped_and_truncated_responses_are_retried(proc, server, tmp_path) -> None:
    url = server.route(
        "/x", Reply(action="drop"), Reply(200, b"half", action="truncate"), Reply(200, CSS)
    )
    target = tmp_path / "x"
    task = make("x", {"url": url, "path": str(target), "retries": 2, **FAST})
    proc.create(task, ctx_for(task, "create"))
    assert target.read_bytes() == CSS
    assert len(server.hits("/x")) == 3 and leftovers(tmp_path) == []


def test_connection_refused_is_retried_then_reported(proc, tmp_path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/app.css"
    task = make("r", {"url": url, "path": str(tmp_path / "r"), "retries": 1, **FAST})
    with pytest.raises(HttpTaskError, match=r"failed after 2 attempt\(s\): connection error"):
        proc.create(task, ctx_for(task, "create"))


def test_drift_missing_or_changed_file(proc, server, tmp_path) -> None:
    url = server.route("/app.css", Reply(200, CSS))
    target = tmp_path / "app.css"
    task = make("css", {"url": url, "path": str(target), **FAST})
    result = proc.create(task, ctx_for(task, "create"))
    state = TaskState(
        context="dev",
        name="css",
        outputs=dict(result.outputs),
        resource_checksum=result.resource_checksum,
    )
    assert proc.detect_drift(task, ctx_for(task, "detect_drift", state)).drifted is False
    target.write_bytes(b"edited by hand")
    changed = proc.detect_drift(task, ctx_for(task, "detect_drift", state))
    assert changed.drifted is True and "changed" in changed.message
    target.unlink()
    missing = proc.detect_drift(task, ctx_for(task, "detect_drift", state))
    assert missing.drifted is True and "missing" in missing.message
    assert len(server.hits("/app.css")) == 1, "drift detection does not touch the network"


def test_delete_and_describe_download(proc, server, tmp_path) -> None:
    url = server.route("/app.css", Reply(200, CSS))
    target = tmp_path / "app.css"
    task = make("css", {"url": url, "path": str(target), **FAST})
    proc.create(task, ctx_for(task, "create"))
    described = proc.describe(task, ctx_for(task, "describe"))
    assert described.details == {
        "path": str(target),
        "exists": True,
        "sha256": CSS_SHA,
        "size": len(CSS),
    }
    proc.delete(task, ctx_for(task, "delete"))
    assert not target.exists()
    assert "already absent" in proc.delete(task, ctx_for(task, "delete")).message
    assert (
        "nothing to undo"
        in proc.rollback(task, ctx_for(task, "rollback", failed_action="create")).message
    )


# -- endpoint mode ------------------------------------------------------------------------


def test_create_posts_json_and_parses_the_response(proc, server) -> None:
    url = server.route(
        "/api/apps",
        Reply(
            201, b'{"id": 7, "name": "web"}', {"Content-Type": "application/json", "ETag": "abc"}
        ),
    )
    task = make(
        "app",
        {
            "url": url,
            "headers": {"X-Team": "core"},
            **FAST,
            "create": {"json": {"name": "web", "replicas": 2}, "expect_status": [200, 201]},
        },
    )
    out = proc.create(task, ctx_for(task, "create")).outputs
    assert out["status"] == 201 and out["json"] == {"id": 7, "name": "web"}
    assert out["headers"]["content-type"] == "application/json" and out["headers"]["etag"] == "abc"
    seen = server.hits("/api/apps")[0]
    assert seen.method == "POST" and json.loads(seen.body) == {"name": "web", "replicas": 2}
    assert seen.headers["Content-Type"] == "application/json" and seen.headers["X-Team"] == "core"


def test_update_falls_back_to_create_and_methods_and_bodies(proc, server) -> None:
    server.route("/api/apps", Reply(200, b"created"))
    server.route("/api/apps/7", Reply(200, b"updated"))
    only_create = make(
        "a", {"url": server.url + "/api/apps", "create": {"method": "put", "body": "raw"}, **FAST}
    )
    assert proc.update(only_create, ctx_for(only_create, "update")).outputs["body"] == "created"
    assert (
        server.hits("/api/apps")[0].method == "PUT" and server.hits("/api/apps")[0].body == b"raw"
    )
    both = make(
        "a",
        {
            "url": server.url + "/api/apps",
            "create": {"method": "POST"},
            "update": {"method": "PATCH", "url": server.url + "/api/apps/7", "json": {"r": 3}},
            **FAST,
        },
    )
    assert proc.update(both, ctx_for(both, "update")).outputs["body"] == "updated"
    assert server.hits("/api/apps/7")[0].method == "PATCH"


def test_expect_status(proc, server) -> None:
    server.route("/gone", Reply(404, b"gone"))
    server.route("/ok", Reply(200, b"fine"))
    deleting = make(
        "d",
        {
            "url": server.url + "/gone",
            "create": {},
            **FAST,
            "delete": {"method": "DELETE", "expect_status": [200, 204, 404]},
        },
    )
    assert proc.delete(deleting, ctx_for(deleting, "delete")).outputs["status"] == 404
    strict = make("s", {"url": server.url + "/ok", "create": {"expect_status": 201}, **FAST})
    with pytest.raises(HttpTaskError, match="unexpected status 200"):
        proc.create(strict, ctx_for(strict, "create"))
    no_delete = make("n", {"url": server.url + "/ok", "create": {}, **FAST})
    assert "nothing to do" in proc.delete(no_delete, ctx_for(no_delete, "delete")).message


def test_check_request_decides_drift(proc, server) -> None:
    server.route("/health", Reply(200, b"ok"), Reply(404, b"gone"), Reply(500, b"err"))
    task = make(
        "h", {"url": server.url + "/health", "create": {}, "check": {}, "retries": 1, **FAST}
    )
    assert proc.detect_drift(task, ctx_for(task, "detect_drift")).drifted is False
    drift = proc.detect_drift(task, ctx_for(task, "detect_drift"))
    assert drift.drifted is True and "404" in drift.message
    with pytest.raises(HttpTaskError, match="HTTP 500"):
        proc.detect_drift(task, ctx_for(task, "detect_drift"))


def test_rollback_request(proc, server) -> None:
    server.route("/undo", Reply(200))
    task = make(
        "r",
        {
            "url": server.url + "/nope",
            "create": {},
            **FAST,
            "rollback": {"method": "DELETE", "url": server.url + "/undo"},
        },
    )
    with pytest.raises(HttpTaskError):
        proc.create(task, ctx_for(task, "create"))
    proc.rollback(task, ctx_for(task, "rollback", failed_action="create"))
    assert [s.method for s in server.hits("/undo")] == ["DELETE"]


# -- secrets ------------------------------------------------------------------------------


def test_redact_masks_auth_headers_and_url_passwords(proc) -> None:
    spec = {
        "url": "http://deploy:pa55word-xyz@127.0.0.1:9/api",
        "headers": {"Authorization": "Bearer tok-abcdef", "Accept": "json"},
        "create": {"headers": {"X-Deploy-Key": "k-998877"}, "body": "key=k-998877"},
        "sensitiveHeaders": ["X-Deploy-Key"],
    }
    redacted = proc.redact(spec)
    text = repr(redacted)
    for secret in ("pa55word-xyz", "tok-abcdef", "k-998877"):
        assert secret not in text
    assert redacted["url"] == "http://deploy:***@127.0.0.1:9/api"
    assert redacted["headers"] == {"Authorization": "***", "Accept": "json"}
    assert redacted["create"]["body"] == "key=***"
    assert spec["headers"]["Authorization"] == "Bearer tok-abcdef", "input untouched"


def test_url_credentials_become_basic_auth_and_stay_out_of_errors(proc, server) -> None:
    server.route("/private", Reply(403, b"denied"))
    url = server.url.replace("http://", "http://deploy:pa55word-xyz@") + "/private"
    task = make("p", {"url": url, "create": {}, **FAST})
    with pytest.raises(HttpTaskError) as info:
        proc.create(task, ctx_for(task, "create"))
    assert "pa55word-xyz" not in str(info.value) and "HTTP 403" in str(info.value)
    sent = server.hits("/private")[0].headers["Authorization"]
    assert base64.b64decode(sent.split()[1]) == b"deploy:pa55word-xyz"


# -- spec validation and wiring -----------------------------------------------------------


@pytest.mark.parametrize(
    "spec, field",
    [
        ({"url": "file:///etc/passwd", "path": "x"}, "spec.url"),
        ({"url": "ftp://127.0.0.1/x", "create": {}}, "spec.url"),
        ({"path": "x"}, "spec.url"),
        ({"url": "http://127.0.0.1/x", "path": "x", "create": {}}, "spec.create"),
        ({"url": "http://127.0.0.1/x", "path": "x", "sha256": "abc"}, "spec.sha256"),
        ({"url": "http://127.0.0.1/x", "create": {"json": {}, "body": ""}}, "spec.create"),
        (
            {"url": "http://127.0.0.1/x", "create": {"expect_status": "ok"}},
            "spec.create.expect_status",
        ),
        ({"url": "http://127.0.0.1/x"}, "give 'path' (download) or a request per action"),
        ({"url": "http://127.0.0.1/x", "create": {}, "retries": -1}, "spec.retries"),
    ],
)
def test_spec_errors(proc, spec, field) -> None:
    task = make("bad", spec)
    with pytest.raises(OpusError, match=re.escape(field)):
        proc.create(task, ctx_for(task, "create"))


def test_hookimpl_registers_the_processor() -> None:
    from opus import hookspecs

    pm = pluggy.PluginManager("opus")
    pm.add_hookspecs(hookspecs)
    pm.register(opus_http)
    assert [p for group in pm.hook.opus_register_processors() for p in group] == [HttpProcessor]


def test_entry_point_is_declared() -> None:
    try:
        dist = importlib.metadata.distribution("opus-http")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("opus-http is not installed (pip install -e plugins/http)")
    eps = [ep for ep in dist.entry_points if ep.group == "opus"]
    assert [(ep.name, ep.value) for ep in eps] == [("http", "opus_http")]
    assert eps[0].load() is opus_http
