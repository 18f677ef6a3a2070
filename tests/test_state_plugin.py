"""A third-party state backend plugged in with ``-p``: ``jsonfile://`` from helpers_jsonstate.

It must be listed by ``opus plugins``, serve runs and the ``state``/``runs`` commands, keep
state between processes, and lock contexts through the same ``StateBackend`` seam.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers_cli import json_out, run_opus, start_opus, statuses, task, wait_for, write_manifest
from helpers_procs import SLOW, read_events

pytestmark = pytest.mark.slow

PLUGINS = ("helpers_procs", "helpers_jsonstate")


@pytest.fixture
def store(tmp_path: Path) -> tuple[Path, str, Path]:
    manifest = write_manifest(
        tmp_path / "tasks.yaml",
        [
            task(SLOW, "one", {"value": "first", "delay": 0}),
            task(SLOW, "two", {"value": "${VAR:one:value}-second", "delay": 0}),
        ],
    )
    path = tmp_path / "store" / "state.json"
    return manifest, f"jsonfile://{path}", path


def test_plugins_lists_the_scheme(tmp_path: Path) -> None:
    proc = run_opus(tmp_path, "plugins", "--output", "json", plugins=PLUGINS)
    assert proc.returncode == 0, proc.stderr
    backends = json.loads(proc.stdout)["state_backends"]
    assert backends["jsonfile"] == "helpers_jsonstate"
    assert {"memory", "sqlite"} <= set(backends)
    proc = run_opus(tmp_path, "plugins", plugins=PLUGINS)
    assert re.search(r"\bjsonfile\s*│\s*helpers_jsonstate\b", proc.stdout), proc.stdout


def test_runs_and_state_commands_use_the_plugin_backend(
    tmp_path: Path, store: tuple[Path, str, Path]
) -> None:
    manifest, url, path = store
    proc = run_opus(
        tmp_path, "apply", "-f", str(manifest), "--state", url, "-o", "json", plugins=PLUGINS
    )
    assert proc.returncode == 0, proc.stderr
    first = json_out(proc)
    assert statuses(first) == {"one": ("done", "create"), "two": ("done", "create")}
    assert first["tasks"]["two"]["outputs"] == {"value": "first-second"}

    data = json.loads(path.read_text())  # what the plugin wrote, in its own format
    assert sorted(r["name"] for r in data["records"]) == ["one", "two"]
    assert data["locks"] == []
    assert [r["status"] for r in data["runs"]] == ["ok"]

    # A new process reads the same state: nothing to do.
    proc = run_opus(
        tmp_path, "apply", "-f", str(manifest), "--state", url, "-o", "json", plugins=PLUGINS
    )
    assert statuses(json_out(proc)) == {"one": ("unchanged", None), "two": ("unchanged", None)}

    listed = run_opus(tmp_path, "state", "list", "--state", url, "-o", "json", plugins=PLUGINS)
    assert [r["name"] for r in json.loads(listed.stdout)] == ["one", "two"]
    shown = run_opus(
        tmp_path, "state", "show", "two", "--state", url, "-o", "json", plugins=PLUGINS
    )
    assert json.loads(shown.stdout)["applied_spec"] == {"value": "first-second", "delay": 0}
    runs = run_opus(tmp_path, "runs", "list", "--state", url, "-o", "json", plugins=PLUGINS)
    assert [r["run_id"] for r in json.loads(runs.stdout)][-1] == first["run_id"]

    proc = run_opus(tmp_path, "delete", "-f", str(manifest), "--state", url, plugins=PLUGINS)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(path.read_text())["records"] == []


def test_plugin_backend_locks_contexts(tmp_path: Path, store: tuple[Path, str, Path]) -> None:
    manifest, url, _ = store
    (tmp_path / "hold").touch()
    first = start_opus(tmp_path, "apply", "-f", str(manifest), "--state", url, plugins=PLUGINS)
    try:
        wait_for(
            lambda: any(e == "holding" for e, *_ in read_events(tmp_path)),
            what="first run holding",
            alive=first,
        )
        second = run_opus(tmp_path, "apply", "-f", str(manifest), "--state", url, plugins=PLUGINS)
        assert second.returncode == 4
        assert f"(pid {first.pid}," in second.stderr
    finally:
        (tmp_path / "hold").unlink()
        first.communicate(timeout=30)
    assert first.returncode == 0


def test_unknown_scheme_lists_the_known_ones(tmp_path: Path, store: tuple[Path, str, Path]) -> None:
    manifest, url, _ = store
    proc = run_opus(
        tmp_path, "apply", "-f", str(manifest), "--state", "nosuch://x", plugins=PLUGINS
    )
    assert proc.returncode == 2
    assert "no state backend for 'nosuch://x'" in proc.stderr
    assert "jsonfile" in proc.stderr
    # Without the plugin, its scheme is unknown.
    proc = run_opus(tmp_path, "state", "list", "--state", url)
    assert proc.returncode == 2
    assert "no state backend" in proc.stderr and "jsonfile" not in proc.stderr.split("(")[-1]
