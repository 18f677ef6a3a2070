"""docs/plugins.md: its complete plugin, manifest and contract example run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from helpers_cli import cli_env, run_opus


def run(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m opus ARGS`` in ``workdir`` (modules written there importable)."""
    return run_opus(workdir, *args, plugins=())


DOC = (Path(__file__).resolve().parents[2] / "docs" / "plugins.md").read_text()


def block(after: str, language: str) -> str:
    """The first ``language`` code block after the text ``after``."""
    start = DOC.index(after)
    match = re.compile(rf"```{language}[^\n]*\n(.*?)```", re.S).search(DOC, start)
    assert match, f"no {language} block after {after!r}"
    return match.group(1)


def test_the_complete_plugin_runs_as_documented(tmp_path: Path) -> None:
    (tmp_path / "acme_notes.py").write_text(block("## A complete plugin", "python"))
    (tmp_path / "notes.yaml").write_text(block("A manifest using it", "yaml"))
    listed = run(tmp_path, "-p", "acme_notes", "plugins", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert '"acme.io/note/v1"' in listed.stdout and '"NOTE": "acme_notes"' in listed.stdout
    published = run(tmp_path, "-p", "acme_notes", "publish", "-f", "notes.yaml")
    assert published.returncode == 0, published.stderr
    assert (tmp_path / "notes" / "reply.txt").read_text() == "Hello back"
    notes = run(tmp_path, "-p", "acme_notes", "notes")
    assert notes.stdout.split() == ["greeting", "reply"]

    (tmp_path / "opus.yaml").write_text(block("## Plugin settings", "yaml"))
    elsewhere = run(
        tmp_path, "-p", "acme_notes", "publish", "-f", "notes.yaml", "--context", "team"
    )
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert (tmp_path / "team-notes" / "reply.txt").read_text() == "Hello back"


def test_the_contract_example_passes(tmp_path: Path) -> None:
    (tmp_path / "acme_notes.py").write_text(block("## A complete plugin", "python"))
    (tmp_path / "test_note.py").write_text(block("temporary state: create; describe", "python"))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_note.py"],
        cwd=tmp_path,
        env=cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "8 passed, 1 skipped" in result.stdout
