"""End to end: examples/webapp through the CLI (``python -m opus``) in dev and prod.

The example's three plugins (opus-file, opus-shell, opus-http) must be installed; the
stylesheet is served by a local http.server on 127.0.0.1.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "webapp"
TASKS = ["site-root", "static-dir", "assets", "app-config", "page", "release-manifest"]

pytestmark = pytest.mark.slow

for _dist in ("opus-file", "opus-shell", "opus-http"):
    try:
        importlib.metadata.distribution(_dist)
    except importlib.metadata.PackageNotFoundError:
        pytestmark = [pytest.mark.slow, pytest.mark.skip(reason=f"{_dist} is not installed")]


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def assets_url() -> Iterator[str]:
    handler = functools.partial(_Quiet, directory=str(EXAMPLE / "assets"))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/app.css"
    httpd.shutdown()
    httpd.server_close()


class Opus:
    """Runs ``python -m opus`` in a copy of the example, always with JSON output."""

    def __init__(self, workdir: Path, assets_url: str) -> None:
        self.workdir = workdir
        self.assets_url = assets_url

    def __call__(self, command: str, context: str, *more: str) -> tuple[int, dict[str, Any]]:
        args = [
            sys.executable,
            "-m",
            "opus",
            command,
            "-f",
            "tasks",
            "--values",
            "values.yaml",
            "--context",
            context,
            "--var",
            f"assets_url={self.assets_url}",
            "--state",
            "sqlite:///opus-state.db",
            "--output",
            "json",
            *more,
        ]
        env = {k: v for k, v in os.environ.items() if k != "OPUS_FILE_BACKUP_DIR"}
        proc = subprocess.run(
            args, cwd=self.workdir, env=env, capture_output=True, text=True, timeout=120
        )
        assert proc.stdout.strip(), f"no JSON on stdout (exit {proc.returncode}):\n{proc.stderr}"
        try:
            report = json.loads(proc.stdout)
        except ValueError:
            pytest.fail(f"stdout is not one JSON object:\n{proc.stdout}\nstderr:\n{proc.stderr}")
        self.last_stderr = proc.stderr
        return proc.returncode, report


@pytest.fixture
def opus(tmp_path: Path, assets_url: str) -> Opus:
    workdir = tmp_path / "webapp"
    shutil.copytree(EXAMPLE, workdir, ignore=shutil.ignore_patterns("build", ".opus", "*.db"))
    return Opus(workdir, assets_url)


def summary(report: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {name: (t["status"], t["action"]) for name, t in report["tasks"].items()}


def state_bytes(workdir: Path) -> bytes:
    """Everything the SQLite state holds on disk (main file, WAL and journal)."""
    return b"".join(p.read_bytes() for p in sorted(workdir.glob("opus-state.db*")))


def ini(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if " = " in line)
    return {k.strip(): v.strip() for k, v in pairs}


def test_webapp_dev_apply_plan_drift_delete(opus: Opus) -> None:
    site = opus.workdir / "build" / "dev" / "site"

    code, report = opus("apply", "dev")
    assert code == 0, opus.last_stderr
    assert summary(report) == {name: ("done", "create") for name in TASKS}
    assert ini(site / "app.ini")["port"] == "8080"
    assert stat.S_IMODE((site / "app.ini").stat().st_mode) == 0o640
    assert (site / "static" / "app.css").read_bytes() == (
        EXAMPLE / "assets" / "app.css"
    ).read_bytes()
    page = report["tasks"]["page"]["outputs"]
    assert page["PAGE"] == str(site / "index.html")
    assert "Hello from the dev box" in (site / "index.html").read_text()
    release = json.loads((site / "release.json").read_text())
    assert (
        release["version"]
        == page["VERSION"]
        == report["tasks"]["app-config"]["outputs"]["sha256"][:12]
    )
    assert page["stderr"] == "deployed with token ***", "the sensitive token is masked"
    stored = state_bytes(opus.workdir)
    assert b"app-config" in stored and b"dev-token-not-secret" not in stored

    code, report = opus("apply", "dev")
    assert code == 0
    assert summary(report) == {name: ("unchanged", summary(report)[name][1]) for name in TASKS}

    code, report = opus("plan", "dev", "--var", "port=9090")
    assert code == 3, "plan exits 3 when something would change"
    assert report["tasks"]["app-config"]["action"] == "update"
    assert report["tasks"]["app-config"]["status"] == "planned"
    assert report["tasks"]["site-root"]["status"] == "unchanged"
    assert ini(site / "app.ini")["port"] == "8080", "plan changes nothing"

    code, report = opus("apply", "dev", "--var", "port=9090")
    assert code == 0, opus.last_stderr
    assert report["tasks"]["app-config"]["status"] == "done"
    assert report["tasks"]["app-config"]["action"] == "update"
    assert report["tasks"]["site-root"]["status"] == "unchanged"
    assert ini(site / "app.ini")["port"] == "9090"
    new_version = report["tasks"]["page"]["outputs"]["VERSION"]
    assert json.loads((site / "release.json").read_text())["version"] == new_version

    code, report = opus("drift", "dev", "--var", "port=9090")
    assert code == 0, f"nothing drifted yet: {report}"
    with (site / "app.ini").open("a") as handle:
        handle.write("debug = true\n")  # a manual edit
    code, report = opus("drift", "dev", "--var", "port=9090")
    assert code == 3, "drift exits 3 when something drifted"
    drifted = {name for name, t in report["tasks"].items() if t["drifted"]}
    assert drifted == {"app-config"}

    # "Apply again to put everything back": plan shows the repair, apply makes it
    code, report = opus("plan", "dev", "--var", "port=9090")
    assert code == 3, "plan exits 3: the drifted file would be updated"
    assert report["tasks"]["app-config"]["action"] == "update"
    assert report["tasks"]["app-config"]["drifted"] is True
    assert "debug = true" in (site / "app.ini").read_text(), "plan changes nothing"
    code, report = opus("apply", "dev", "--var", "port=9090")
    assert code == 0, opus.last_stderr
    assert summary(report)["app-config"] == ("done", "update")
    assert report["tasks"]["app-config"]["drifted"] is True
    assert "debug" not in ini(site / "app.ini") and ini(site / "app.ini")["port"] == "9090"
    code, report = opus("drift", "dev", "--var", "port=9090")
    assert code == 0, f"nothing drifted after the repair: {report}"

    code, report = opus("delete", "dev", "--var", "port=9090")
    assert code == 0, opus.last_stderr
    assert summary(report) == {name: ("done", "delete") for name in TASKS}
    # directories go last: site-root could not be removed while anything was left in it
    assert not site.exists()
    assert b"dev-token-not-secret" not in state_bytes(opus.workdir)


def test_webapp_prod_context_uses_its_overrides(opus: Opus) -> None:
    code, report = opus("apply", "prod")
    assert code == 0, opus.last_stderr
    site = opus.workdir / "build" / "prod" / "site"
    config = ini(site / "app.ini")
    assert (config["environment"], config["port"], config["workers"]) == ("prod", "80", "8")
    assert "Welcome to webapp" in (site / "index.html").read_text()
    assert not (opus.workdir / "build" / "dev").exists(), "dev is untouched by a prod run"
    assert json.loads((site / "release.json").read_text())["environment"] == "prod"

    code, report = opus("plan", "dev")
    assert code == 3 and {t["action"] for t in report["tasks"].values()} == {"create"}

    code, report = opus("delete", "prod")
    assert code == 0, opus.last_stderr
    assert not site.exists()
    assert b"prod-token-change-me" not in state_bytes(opus.workdir)
