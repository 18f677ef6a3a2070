"""One version source: ``opus.__version__``, read by setup.cfg and shown by ``opus --version``."""

from __future__ import annotations

import configparser
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import opus

REPO = Path(__file__).resolve().parent.parent


def test_setup_cfg_reads_the_version_from_the_package() -> None:
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    assert config["metadata"]["version"] == "attr: opus.__version__"


def test_installed_metadata_and_cli_show_the_package_version() -> None:
    assert version("opus") == opus.__version__
    proc = subprocess.run(
        [sys.executable, "-m", "opus", "--version"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"opus, version {opus.__version__}"
