"""``.ci/run``: fast static checks first, then exactly the README's test command."""

from __future__ import annotations

import configparser
import os
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CI = REPO / ".ci" / "run"


def readme_test_command() -> str:
    """The command under "Run the whole test suite" in README.md."""
    text = (REPO / "README.md").read_text()
    block = re.search(r"Run the whole test suite.*?```sh\n(.+?)\n```", text, re.S)
    assert block, "README.md must show the test command in a ```sh block"
    return block.group(1).strip()


def commands() -> list[str]:
    """The non-comment, non-blank lines of .ci/run, backslash continuations joined."""
    joined = CI.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in joined.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_ci_runs_the_readme_test_command_last() -> None:
    assert os.access(CI, os.X_OK)
    assert commands()[-1] == readme_test_command()


def test_static_checks_run_before_the_tests() -> None:
    lines = commands()
    tests = lines.index(readme_test_command())
    for check in (
        ".venv/bin/ruff check .",
        ".venv/bin/ruff format --check .",
        ".venv/bin/mypy --strict opus",
    ):
        assert check in lines[:tests], check


def test_the_test_extra_installs_every_tool_ci_calls() -> None:
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    extra = config["options.extras_require"]["test"].split()
    names = {re.split(r"[<>=!~\[]", requirement)[0].lower() for requirement in extra}
    assert {"pytest", "ruff", "mypy", "hypothesis"} <= names
    assert "'.[test," in readme_test_command()  # the README command installs that extra
