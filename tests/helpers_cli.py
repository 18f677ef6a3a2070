"""The one kit for CLI tests: running ``opus`` for real or in-process, and writing manifests.

:func:`run_opus` and :func:`start_opus` run ``python -m opus -p helpers_procs ...`` in a
subprocess with ``cwd`` set to the test's tmp dir, ``PYTHONPATH`` pointing at this directory
(so the test processors load) and at that tmp dir (for modules a test writes there, such as
:func:`write_procs`'s), and ``OPUS_TEST_DIR`` set for the processors' event log.
:func:`invoke` runs the CLI in-process with click's ``CliRunner``. All return a
``subprocess.CompletedProcess``. Manifests are dicts from :func:`task` (or :func:`hello`);
Task objects for the Python API come from ``support_processors.make_task``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from opus.cli import cli
from opus.cli.session import Session

TESTS_DIR = Path(__file__).resolve().parent


def cli_env(workdir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a CLI subprocess: test plugins importable, no stray opus env."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPUS_")}
    path = [str(TESTS_DIR), str(workdir)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
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
    spec: Mapping[str, Any] | None = None,
    *,
    kind: str = "Step",
    depends: Iterable[str] = (),
    **metadata: Any,
) -> dict[str, Any]:
    """A manifest mapping for one task; ``depends`` names the tasks it depends on, other
    keyword arguments are more ``metadata`` (``labels=...``, ``dependencies=[...]``)."""
    meta: dict[str, Any] = {"name": name, **metadata}
    deps = list(depends)
    if deps:
        meta["dependencies"] = [{"tasks": deps}]
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, "spec": dict(spec or {})}


def hello(name: str, content: str = "hi", **metadata: Any) -> dict[str, Any]:
    """A ``hello-world/v1`` task writing ``out/NAME.txt`` (the hello_world plugin package)."""
    spec = {"path": f"out/{name}.txt", "content": content}
    return task("hello-world/v1", name, spec, kind="HelloWorld", **metadata)


def state_url(directory: Path) -> str:
    """A SQLite state URL in ``directory``."""
    return f"sqlite:///{directory}/state.db"


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


def invoke(
    workdir: Path, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the CLI in-process with click's CliRunner in ``workdir``, stdout and stderr apart,
    with no ``OPUS_*`` variable of this process (``env`` adds some)."""
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
    return subprocess.CompletedProcess(
        ["opus", *args], result.exit_code, result.stdout, result.stderr
    )


# -- processors written into a test's directory, loaded with ``-p opus_cli_testprocs`` -----

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


def write_procs(directory: Path) -> Path:
    """Write the :data:`PROCS_SOURCE` module into ``directory`` (importable by the CLI runs
    there: :func:`cli_env` puts the working directory on ``PYTHONPATH``)."""
    path = directory / f"{PROCS_MODULE}.py"
    path.write_text(PROCS_SOURCE)
    return path
