"""The documentation site builds with ``mkdocs build --strict`` (docs extra installed)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MKDOCS = Path(sys.executable).parent / "mkdocs"

pytestmark = pytest.mark.skipif(
    not MKDOCS.exists(), reason="mkdocs is not installed (pip install -e '.[docs]')"
)


def build(root: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MKDOCS), "build", "--strict", "-f", str(root / "mkdocs.yml"), "-d", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": str(MKDOCS.parent), "NO_MKDOCS_2_WARNING": "1", "HOME": str(out.parent)},
    )


def test_site_builds_strictly_with_an_api_reference(tmp_path: Path) -> None:
    built = build(REPO, tmp_path / "site")
    assert built.returncode == 0, built.stdout + built.stderr
    reference = (tmp_path / "site" / "reference" / "index.html").read_text()
    for name in ("ProcessorContract", "opus_variable_sources", "StateBackend", "Engine"):
        assert name in reference
    assert (tmp_path / "site" / "plugins" / "index.html").exists()


def test_a_broken_link_fails_the_build(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    copy.mkdir()
    shutil.copy(REPO / "mkdocs.yml", copy / "mkdocs.yml")
    shutil.copytree(REPO / "docs", copy / "docs")
    with (copy / "docs" / "plugins.md").open("a") as doc:
        doc.write("\nSee [the missing page](missing.md).\n")
    built = build(copy, tmp_path / "site")
    assert built.returncode != 0
    assert "missing.md" in built.stdout + built.stderr
