"""Running the real ``opus`` CLI in subprocesses, for the lifecycle and state tests.

Every call runs ``python -m opus -p helpers_procs ...`` with ``cwd`` set to the test's tmp
dir, ``PYTHONPATH`` pointing at this directory (so the test processors load), and
``OPUS_TEST_DIR`` set for the processors' event log.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

TESTS_DIR = Path(__file__).resolve().parent


def cli_env(workdir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a CLI subprocess: test plugins importable, no stray opus env."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPUS_")}
    path = [str(TESTS_DIR)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    env["PYTHONPATH"] = os.pathsep.join(path)
    env["OPUS_TEST_DIR"] = str(workdir)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def opus_argv(*args: str, plugins: Iterable[str] = ("helpers_procs",)) -> list[str]:
    argv = [sys.executable, "-m", "opus"]
    for module in plugins:
        argv += ["-p", module]
    return argv + list(args)


def run_opus(
    workdir: Path,
    *args: str,
    timeout: float = 60,
    plugins: Iterable[str] = ("helpers_procs",),
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the CLI to completion and return what it did."""
    return subprocess.run(
        opus_argv(*args, plugins=plugins),
        cwd=workdir,
        env=cli_env(workdir, env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_opus(
    workdir: Path,
    *args: str,
    plugins: Iterable[str] = ("helpers_procs",),
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[str]:
    """Start the CLI in the background (stdout and stderr piped)."""
    return subprocess.Popen(
        opus_argv(*args, plugins=plugins),
        cwd=workdir,
        env=cli_env(workdir, env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@contextmanager
def reaped(proc: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """Kill and wait for ``proc`` on the way out if it still runs (say, after a failed wait)."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def json_out(proc: subprocess.CompletedProcess[str]) -> Any:
    """The JSON document a ``--output json`` command printed (fails with its stderr)."""
    assert proc.stdout.strip(), f"no stdout (rc={proc.returncode}); stderr:\n{proc.stderr}"
    return json.loads(proc.stdout)


def statuses(report: Mapping[str, Any]) -> dict[str, tuple[str, str | None]]:
    """``{task: (status, action)}`` of a run report."""
    return {name: (t["status"], t["action"]) for name, t in report["tasks"].items()}


def write_manifest(path: Path, docs: Iterable[Mapping[str, Any]]) -> Path:
    """Write ``docs`` as a multi-document YAML file."""
    path.write_text(yaml.safe_dump_all(list(docs), sort_keys=False))
    return path


def task(
    api_version: str,
    name: str,
    spec: Mapping[str, Any],
    *,
    kind: str = "Step",
    depends: Iterable[str] = (),
) -> dict[str, Any]:
    """A manifest mapping for one task."""
    metadata: dict[str, Any] = {"name": name}
    deps = list(depends)
    if deps:
        metadata["dependencies"] = [{"tasks": deps}]
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": dict(spec)}


def wait_for(
    predicate: Callable[[], Any],
    timeout: float = 20,
    what: str = "condition",
    alive: subprocess.Popen[str] | None = None,
) -> Any:
    """Poll ``predicate`` every 10 ms until it returns something true; fail after ``timeout``.

    With ``alive``, fail at once (showing its stderr) if that process ends first.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if alive is not None and alive.poll() is not None:
            _, err = alive.communicate()
            raise AssertionError(f"process ended (rc={alive.returncode}) before {what}:\n{err}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)
