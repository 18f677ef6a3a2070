"""docs/migrating.md: the worked port of the seeds' hello world runs as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DOC = (Path(__file__).resolve().parents[1] / "docs" / "migrating.md").read_text()


def port() -> str:
    match = re.search(r'```python title="hello_port.py"\n(.*?)```', DOC, re.S)
    assert match
    return match.group(1)


def run(tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "hello_port.py").write_text(code)
    return subprocess.run(
        [sys.executable, "hello_port.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_port_writes_hello_world_in_dev(tmp_path: Path) -> None:
    done = run(tmp_path, port())
    assert done.returncode == 0, done.stderr
    assert done.stdout == "done hello.txt\n"
    assert (tmp_path / "hello.txt").read_text() == "Hello World!"


def test_out_of_scope_in_prod_writes_nothing(tmp_path: Path) -> None:
    code = port().replace('process_context("create", "dev")', 'process_context("create", "prod")')
    code = code.replace(
        'print(result.tasks["hello"].status, result.tasks["hello"].outputs["path"])',
        "print(sorted(result.tasks))",
    )
    done = run(tmp_path, code)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "[]\n"
    assert not (tmp_path / "hello.txt").exists()
