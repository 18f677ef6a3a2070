"""Running ``shell/v1`` tasks through the real CLI, for the shell security tests."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml
from helpers_cli import run_opus


def opus(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_opus(workdir, *args, plugins=())


def write(workdir: Path, *docs: dict) -> Path:
    path = workdir / "tasks.yaml"
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def shell_task(name: str, spec: dict, depends: list[str] | None = None) -> dict:
    metadata: dict = {"name": name}
    if depends:
        metadata["dependencies"] = [{"tasks": depends}]
    return {"apiVersion": "shell/v1", "kind": "Shell", "metadata": metadata, "spec": spec}


def apply(workdir: Path, *extra: str) -> dict:
    done = opus(
        workdir, "apply", "-f", "tasks.yaml", "--state", "sqlite:///s.db", "-o", "json", *extra
    )
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)


def pwned(workdir: Path) -> list[str]:
    return sorted(p.name for p in workdir.iterdir() if p.name.startswith("PWNED"))
