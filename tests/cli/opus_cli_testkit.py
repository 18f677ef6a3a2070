"""Helpers for the CLI tests: manifests, a test processor module, in-process and real runs.

Test processors live in a module written to a temp dir and loaded with ``-p
opus_cli_testprocs`` (``PYTHONPATH`` for subprocesses, ``sys.path`` in-process).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from opus.cli import cli
from opus.cli.session import Session

PROCS_MODULE = "opus_cli_testprocs"

PROCS_SOURCE = textwrap.dedent('''
    """Processors for the CLI tests."""
    import time

    import opus
    from opus import Result, TaskProcessor


    class Fail(TaskProcessor):
        api_version = "cli-test/fail-v1"

        def create(self, task, ctx):
            raise RuntimeError(f"boom: {ctx.spec.get('message', 'no message')}")

        update = create


    class Slow(TaskProcessor):
        api_version = "cli-test/slow-v1"

        def create(self, task, ctx):
            time.sleep(float(ctx.spec.get("seconds", 0.1)))
            return {"slept": ctx.spec.get("seconds", 0.1)}

        update = create

        def delete(self, task, ctx):
            return None


    class CreateOnly(TaskProcessor):
        """Implements create and nothing else: plan cannot promise an update."""

        api_version = "cli-test/create-only-v1"

        def create(self, task, ctx):
            return {"value": ctx.spec.get("value")}


    @opus.hookimpl
    def opus_register_processors():
        return [Fail, Slow, CreateOnly]
''')


def task(api: str, name: str, spec: Mapping[str, Any] | None = None, **metadata: Any) -> dict:
    """A manifest mapping."""
    return {
        "apiVersion": api,
        "kind": api.split("/")[0].title().replace("-", ""),
        "metadata": {"name": name, **metadata},
        "spec": dict(spec or {}),
    }


def hello(name: str, content: str = "hi", **metadata: Any) -> dict:
    return task("hello-world/v1", name, {"path": f"out/{name}.txt", "content": content}, **metadata)


def write_manifest(path: Path, *tasks: Mapping[str, Any]) -> Path:
    path.write_text(yaml.safe_dump_all(list(tasks), sort_keys=False))
    return path


def write_procs(directory: Path) -> Path:
    path = directory / f"{PROCS_MODULE}.py"
    path.write_text(PROCS_SOURCE)
    return path


def clean_env(extra: Mapping[str, str] | None = None, pythonpath: Path | None = None) -> dict:
    """The environment without any ``OPUS_*`` variable (plus ``extra``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPUS_")}
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            [str(pythonpath)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
        )
    env.update(extra or {})
    return env


@dataclass
class Outcome:
    code: int
    out: str
    err: str


def invoke(workdir: Path, *args: str, env: Mapping[str, str] | None = None) -> Outcome:
    """Run the CLI in-process with click's CliRunner, in ``workdir``, stdout/stderr apart."""
    runner = CliRunner()
    cwd = os.getcwd()
    os.chdir(workdir)
    saved = {k: v for k, v in os.environ.items() if k.startswith("OPUS_")}
    for key in saved:
        del os.environ[key]
    try:
        result = runner.invoke(
            cli, list(args), obj=Session(), env=dict(env or {}), catch_exceptions=False
        )
    finally:
        os.environ.update(saved)
        os.chdir(cwd)
    return Outcome(result.exit_code, result.stdout, result.stderr)


def run(
    workdir: Path, *args: str, env: Mapping[str, str] | None = None, timeout: float = 60
) -> Outcome:
    """Run ``python -m opus ARGS`` for real (the test processors importable)."""
    proc = subprocess.run(
        [sys.executable, "-m", "opus", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        env=clean_env(env, pythonpath=workdir),
        timeout=timeout,
    )
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def state_url(directory: Path) -> str:
    return f"sqlite:///{directory}/state.db"
