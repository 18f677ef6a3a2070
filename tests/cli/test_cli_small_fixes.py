"""CLI second pass, small fixes: -q/-v after the command, every setting in ``opus config``,
drift counts in ``runs list``, one-line empty listings, install lines, NO_COLOR/FORCE_COLOR."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import select
import subprocess
import sys
from pathlib import Path

import pytest
from helpers_cli import hello, invoke, state_url
from helpers_cli import write_manifest as write_docs

from opus import Plugins

REPO = Path(__file__).resolve().parents[2]
COLOUR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-7]|9[0-7]|38;[0-9;]+)m")


def write_manifest(path: Path, *docs: dict) -> Path:
    return write_docs(path, docs)


@pytest.fixture
def applied(tmp_path: Path) -> Path:
    write_manifest(tmp_path / "t.yaml", hello("a", "one"), hello("b", "two"))
    result = invoke(tmp_path, "apply", "-f", "t.yaml", "--state", state_url(tmp_path))
    assert result.returncode == 0, result.stderr
    return tmp_path


def test_quiet_and_verbose_after_the_command(applied: Path) -> None:
    args = ("drift", "-f", "t.yaml", "--state", state_url(applied))
    before = invoke(applied, "-q", *args)
    after = invoke(applied, *args, "-q")
    assert before.returncode == after.returncode == 0, after.stderr
    assert "No such option" not in after.stderr
    # -q: no table, only the count line
    assert len(after.stdout.splitlines()) == 1 and "in sync" in after.stdout
    assert after.stdout.split(" in ")[0] == before.stdout.split(" in ")[0]
    plain, loud = invoke(applied, *args), invoke(applied, *args, "-v")
    assert loud.returncode == plain.returncode == 0, loud.stderr
    assert "a: detect_drift ..." in loud.stderr and "a: detect_drift ..." not in plain.stderr
    silent = invoke(applied, *args, "-qq")
    assert silent.returncode == 0 and silent.stdout == ""
    # the fixed commands take them too
    listed = invoke(applied, "state", "list", "--state", state_url(applied), "-q")
    assert listed.returncode == 0, listed.stderr
    assert invoke(applied, "config", "-v").returncode == 0


def test_config_shows_plugin_settings_with_their_source(tmp_path: Path) -> None:
    def plugin_settings(*args: str, env: dict | None = None) -> tuple[dict, dict]:
        result = invoke(tmp_path, *args, "config", "-o", "json", env=env)
        assert result.returncode == 0, result.stderr
        got = json.loads(result.stdout)["settings"]
        return got["plugins"], got["disable_plugins"]

    plugins, disabled = plugin_settings()
    assert plugins == {"value": [], "source": "default", "envvar": "OPUS_PLUGINS"}
    assert disabled == {"value": [], "source": "default", "envvar": "OPUS_DISABLE_PLUGINS"}
    (tmp_path / "opus.yaml").write_text("disable_plugins: [shell]\nplugins: [json]\n")
    plugins, disabled = plugin_settings()
    assert (plugins["value"], plugins["source"]) == (["json"], "config file")
    assert (disabled["value"], disabled["source"]) == (["shell"], "config file")
    _, disabled = plugin_settings("--disable-plugin", "http")
    assert (disabled["value"], disabled["source"]) == (["http"], "command line")
    _, disabled = plugin_settings(env={"OPUS_DISABLE_PLUGINS": "file"})
    assert (disabled["value"], disabled["source"]) == (["file"], "environment")
    plugins, _ = plugin_settings("-p", "csv", env={"OPUS_PLUGINS": "json"})
    assert (plugins["value"], plugins["source"]) == (["csv", "json"], "command line + environment")
    text = invoke(tmp_path, "config").stdout
    assert re.search(
        r"^disable_plugins\s+\[\"shell\"\]\s+\(config file; env OPUS_DISABLE", text, re.M
    )
    assert re.search(r"^plugins\s+\[\"json\"\]\s+\(config file; env OPUS_PLUGINS\)", text, re.M)


def test_runs_list_counts_drifted_and_in_sync(applied: Path) -> None:
    (applied / "out" / "a.txt").write_text("tampered")
    drift = invoke(applied, "drift", "-f", "t.yaml", "--state", state_url(applied))
    assert drift.returncode == 3, drift.stderr
    listed = invoke(applied, "runs", "list", "--state", state_url(applied), "-o", "json")
    runs = json.loads(listed.stdout)
    assert runs[0]["command"] == "drift"
    assert runs[0]["summary"] == {"drifted": 1, "in_sync": 1}
    assert runs[1]["summary"] == {"done": 2}
    text = invoke(applied, "runs", "list", "--state", state_url(applied)).stdout
    drift_line = next(line for line in text.splitlines() if "drift" in line)
    assert "1 drifted, 1 in sync" in drift_line


def test_empty_listings_say_so_in_one_line(tmp_path: Path) -> None:
    url = state_url(tmp_path)
    # listings read existing state only (a missing state is its own error, exit 2)
    backend = Plugins(entry_points=False).state_backend(url)
    backend.list_runs()  # opens, so creates, the database
    backend.close()
    listed = invoke(tmp_path, "state", "list", "--context", "nowhere", "--state", url)
    assert (listed.returncode, listed.stdout) == (0, "no tasks recorded in context nowhere\n")
    runs = invoke(tmp_path, "runs", "list", "--state", url)
    assert (runs.returncode, runs.stdout) == (0, "no runs recorded\n")
    runs = invoke(tmp_path, "runs", "list", "--context", "dev", "--state", url)
    assert runs.stdout == "no runs recorded in context dev\n"
    write_manifest(tmp_path / "t.yaml", hello("a"))
    assert invoke(tmp_path, "apply", "-f", "t.yaml", "--state", url).returncode == 0
    assert invoke(tmp_path, "state", "prune", "--keep", "0", "--state", url).returncode == 0
    history = invoke(tmp_path, "state", "history", "a", "--state", url)
    assert (history.returncode, history.stdout) == (0, "no history for task a in context default\n")
    # a task that was never recorded is still an error
    missing = invoke(tmp_path, "state", "history", "zzz", "--state", url)
    assert missing.returncode == 2 and "no history for task 'zzz'" in missing.stderr


def test_readme_install_lines_work_from_a_checkout() -> None:
    readme = (REPO / "README.md").read_text()
    assert not re.search(r"pip install opus\[", readme), "opus is not on PyPI"
    extras = importlib.metadata.metadata("opus").get_all("Provides-Extra") or []
    for extra in re.findall(r"pip install -e '\.\[(\w+)\]'", readme):
        assert extra in extras
    assert "pip install -e '.[postgres]'" in readme and "pip install -e '.[dask]'" in readme


def _plan(workdir: Path, env: dict[str, str]) -> str:
    write_manifest(workdir / "t.yaml", hello("a"))
    result = invoke(workdir, "plan", "-f", "t.yaml", "--state", state_url(workdir), env=env)
    assert result.returncode == 3, result.stderr
    return result.stdout


def test_force_color_colours_a_pipe_and_no_color_wins(tmp_path: Path) -> None:
    assert not COLOUR.search(_plan(tmp_path, {"NO_COLOR": "", "FORCE_COLOR": ""}))
    forced = _plan(tmp_path, {"FORCE_COLOR": "1", "NO_COLOR": ""})
    assert "\x1b[32m  + create a" in forced
    assert not COLOUR.search(_plan(tmp_path, {"FORCE_COLOR": "1", "NO_COLOR": "1"}))
    applied = invoke(
        tmp_path, "apply", "-f", "t.yaml", "--state", state_url(tmp_path), "--keep-going",
        env={"FORCE_COLOR": "1", "NO_COLOR": ""},
    )  # fmt: skip
    assert applied.returncode == 0 and "\x1b[" in applied.stdout  # the summary table


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
@pytest.mark.parametrize("no_color", ["", "1"])
def test_no_color_on_a_terminal(tmp_path: Path, no_color: str) -> None:
    write_manifest(tmp_path / "t.yaml", hello("a"))
    master, slave = os.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPUS_")}
    env.update(TERM="xterm-256color", COLUMNS="120", NO_COLOR=no_color)
    env.pop("FORCE_COLOR", None)
    argv = [sys.executable, "-m", "opus", "plan", "-f", "t.yaml", "--state", state_url(tmp_path)]
    proc = subprocess.Popen(argv, cwd=tmp_path, stdout=slave, stderr=slave, stdin=slave, env=env)
    os.close(slave)
    raw = b""
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 30)
            if not ready:
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            raw += chunk
        proc.wait(timeout=30)
    finally:
        os.close(master)
    text = raw.decode("utf-8", "replace")
    assert proc.returncode == 3, text
    assert "+ create a" in text
    assert bool(COLOUR.search(text)) is (not no_color), text
