"""Per-task timeouts, cancellation and the second interrupt (issue 12, item 5).

Real subprocesses and signals: a Python processor that sleeps for an hour (ignoring its
cancellation) and shell commands that sleep for an hour, through ``python -m opus``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import textwrap
import threading
import time
from pathlib import Path

import pytest
import yaml
from helpers_cli import run_opus, start_opus

from opus import ConfigError, Engine, Plugins, Result, TaskProcessor
from opus import run as run_module

HANG_PLUGIN = textwrap.dedent(
    """
    import os, time
    from pathlib import Path
    import opus

    class Hang(opus.TaskProcessor):
        api_version = "hang/v1"

        def create(self, task, ctx):
            Path(f"started-{task.name}").write_text(str(os.getpid()))
            time.sleep(3600)  # ignores ctx.cancelled on purpose
            return {}

        def rollback(self, task, ctx):
            Path(f"rolled-back-{task.name}").write_text(ctx.error or "")

    @opus.hookimpl
    def opus_register_processors():
        return [Hang]
    """
)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (not reaped yet) is dead for our purpose
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return True


def wait_for(predicate, timeout: float = 20.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def shell_task(name: str, create: str, **metadata) -> dict:  # noqa: ANN003
    return {
        "apiVersion": "shell/v1",
        "kind": "Shell",
        "metadata": {"name": name, **metadata},
        "spec": {"create": create, "rollback": f"echo rolled back > rolled-back-{name}"},
    }


def start(workdir: Path, *args: str) -> subprocess.Popen[str]:
    (workdir / "hang_plugin.py").write_text(HANG_PLUGIN)
    return start_opus(workdir, *args, plugins=("hang_plugin",))


#: ``opus apply`` of ``t.yaml`` with memory state and a JSON result.
APPLY_JSON = ("apply", "-f", "t.yaml", "--state", "memory://", "-o", "json")


def finish(child: subprocess.Popen[str], timeout: float = 30) -> tuple[str, str]:
    try:
        return child.communicate(timeout=timeout)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()


# -- the engine --------------------------------------------------------------------------------


class Polite(TaskProcessor):
    """Waits to be cancelled (or released); records rollbacks."""

    api_version = "polite/v1"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.rolled_back: list[str] = []
        self.saw_cancel: list[str] = []

    def create(self, task, ctx):  # noqa: ANN001
        deadline = time.monotonic() + ctx.spec.get("work", 0)
        while time.monotonic() < deadline and not self.release.is_set():
            if ctx.cancelled.wait(0.02):
                self.saw_cancel.append(f"{task.name}: {ctx.cancelled.reason}")
                raise RuntimeError("stopped on request")
        return Result(outputs={"ok": True})

    def rollback(self, task, ctx):  # noqa: ANN001
        assert not ctx.is_cancelled(), "a rollback starts uncancelled"
        self.rolled_back.append(task.name)


def polite(name: str, work: float, timeout: float | None = None, deps=()) -> dict:  # noqa: ANN001
    metadata: dict = {"name": name}
    if timeout is not None:
        metadata["timeout"] = timeout
    if deps:
        metadata["dependencies"] = [{"tasks": list(deps)}]
    return {"apiVersion": "polite/v1", "kind": "P", "metadata": metadata, "spec": {"work": work}}


def test_metadata_timeout_cancels_fails_rolls_back_and_skips_dependents() -> None:
    proc = Polite()
    engine = Engine(state="memory://", plugins=Plugins(entry_points=False), keep_going=True)
    engine.register_processor(proc)
    tasks = [
        polite("slow", 30, timeout=0.3),
        polite("child", 0, deps=["slow"]),
        polite("quick", 0.1, timeout=5),
    ]
    started = time.monotonic()
    with engine:
        result = engine.run("apply", tasks)
    assert time.monotonic() - started < 5
    assert result.tasks["slow"].status == "rolled_back"
    assert "create timed out after 0.3s" in result.tasks["slow"].error
    assert proc.saw_cancel == ["slow: timed out after 0.3s"]
    assert proc.rolled_back == ["slow"]
    assert result.tasks["child"].status == "skipped"
    assert result.tasks["quick"].status == "done"


def test_engine_task_timeout_applies_unless_metadata_says_otherwise() -> None:
    proc = Polite()
    engine = Engine(state="memory://", plugins=Plugins(entry_points=False), task_timeout=0.3)
    engine.register_processor(proc)
    with engine:
        result = engine.run("apply", [polite("a", 30), polite("b", 0.6, timeout=5)])
    assert "timed out after 0.3s" in result.tasks["a"].error
    assert result.tasks["b"].status == "done"


@pytest.mark.parametrize("limit", [float("inf"), 1e10, 1e300])
def test_a_timeout_past_the_platform_s_longest_wait_runs_the_task(limit: float) -> None:
    # the driver waits for its deadline in the longest steps the platform has; a wait of
    # inf or 1e10 seconds raised OverflowError mid-run (and the record was lost)
    proc = Polite()
    engine = Engine(state="memory://", plugins=Plugins(entry_points=False), task_timeout=limit)
    engine.register_processor(proc)
    with engine:
        result = engine.run("apply", [polite("a", 0.05)])
        assert result.tasks["a"].status == "done"
        assert engine.state.get("default", "a") is not None


@pytest.mark.parametrize("limit", [0, -1, float("nan")])
def test_the_engine_refuses_a_task_timeout_that_is_not_a_positive_number(limit: float) -> None:
    with pytest.raises(ConfigError, match="task_timeout must be a number of seconds > 0"):
        Engine(state="memory://", plugins=Plugins(entry_points=False), task_timeout=limit)


def test_an_action_ignoring_cancellation_is_given_up_after_a_grace(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(run_module, "CANCEL_GRACE", 0.3)
    proc = Polite()

    class Deaf(Polite):
        api_version = "deaf/v1"

        def create(self, task, ctx):  # noqa: ANN001
            proc.release.wait(30)  # never looks at ctx.cancelled
            return Result()

    engine = Engine(state="memory://", plugins=Plugins(entry_points=False))
    deaf = Deaf()
    engine.register_processor(deaf)
    task = {"apiVersion": "deaf/v1", "kind": "D", "metadata": {"name": "d", "timeout": 0.2}}
    try:
        started = time.monotonic()
        with engine:
            result = engine.run("apply", [{**task, "spec": {}}])
        assert time.monotonic() - started < 5
    finally:
        proc.release.set()
    assert result.abandoned
    assert result.tasks["d"].status == "rolled_back"
    assert "did not stop within 0.3s of being cancelled" in result.tasks["d"].error
    assert deaf.rolled_back == ["d"]


def test_a_bad_metadata_timeout_is_refused(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(shell_task("x", "true", timeout="soon")))
    done = run_opus(tmp_path, "apply", "-f", "t.yaml", "--state", "memory://", plugins=())
    assert done.returncode == 2
    assert "metadata.timeout" in done.stderr and "'soon'" in done.stderr


# -- the CLI, real processes -------------------------------------------------------------------


@pytest.mark.slow
def test_cli_shell_task_over_its_timeout_is_killed_and_rolled_back(tmp_path: Path) -> None:
    pytest.importorskip("opus_shell", reason="needs the opus-shell plugin installed")
    docs = [
        shell_task("sleeper", "echo $$ > sleeper.pid; sleep 3600", timeout=1),
        {
            **shell_task("after", "true"),
            "metadata": {"name": "after", "dependencies": [{"tasks": ["sleeper"]}]},
        },
    ]
    (tmp_path / "t.yaml").write_text(yaml.safe_dump_all(docs))
    started = time.monotonic()
    done = run_opus(tmp_path, *APPLY_JSON, plugins=())
    assert time.monotonic() - started < 20
    assert done.returncode == 1, done.stderr
    tasks = json.loads(done.stdout)["tasks"]
    assert tasks["sleeper"]["status"] == "rolled_back"
    assert "timed out after 1s" in tasks["sleeper"]["error"]
    assert tasks["after"]["status"] == "skipped"
    assert (tmp_path / "rolled-back-sleeper").exists()
    assert not pid_alive(int((tmp_path / "sleeper.pid").read_text()))


@pytest.mark.slow
def test_cli_task_timeout_with_a_processor_that_sleeps_an_hour(tmp_path: Path) -> None:
    doc = {"apiVersion": "hang/v1", "kind": "H", "metadata": {"name": "h"}, "spec": {}}
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(doc))
    (tmp_path / "opus.yaml").write_text("task_timeout: 0.5\n")
    started = time.monotonic()
    child = start(tmp_path, "apply", "-f", "t.yaml", "--state", "sqlite:///s.db", "-o", "json")
    out, err = finish(child)
    assert time.monotonic() - started < 20  # 0.5 s, the 5 s grace, no waiting for the thread
    assert child.returncode == 1, err
    task = json.loads(out)["tasks"]["h"]
    assert task["status"] == "rolled_back"
    assert "create timed out after 0.5s and did not stop" in task["error"]
    assert "timed out" in (tmp_path / "rolled-back-h").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_second_interrupt_exits_130_at_once_and_kills_shell_groups(
    tmp_path: Path, signum: int
) -> None:
    pytest.importorskip("opus_shell", reason="needs the opus-shell plugin installed")
    docs = [
        {"apiVersion": "hang/v1", "kind": "H", "metadata": {"name": "hang"}, "spec": {}},
        shell_task("sh", "sleep 3600 & echo $! > child.pid; echo $$ > sh.pid; wait"),
    ]
    (tmp_path / "t.yaml").write_text(yaml.safe_dump_all(docs))
    child = start(tmp_path, "apply", "-f", "t.yaml", "--state", "sqlite:///s.db")
    try:
        wait_for(lambda: (tmp_path / "started-hang").exists() and (tmp_path / "child.pid").exists())
        child.send_signal(signum)
        time.sleep(0.5)
        assert child.poll() is None, "the first interrupt waits for running tasks"
        child.send_signal(signum)
        stopped = time.monotonic()
        out, err = finish(child, timeout=15)
        assert time.monotonic() - stopped < 10
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 130, err
    assert "Traceback" not in err
    for name in ("sh.pid", "child.pid"):
        pid = int((tmp_path / name).read_text())
        wait_for(lambda pid=pid: not pid_alive(pid), timeout=5)
    runs = run_opus(tmp_path, "runs", "list", "--state", "sqlite:///s.db", "-o", "json", plugins=())
    assert [r["status"] for r in json.loads(runs.stdout)] == ["interrupted"]
    lock = run_opus(tmp_path, "state", "unlock", "--state", "sqlite:///s.db", plugins=())
    assert "is not locked" in lock.stdout


@pytest.mark.slow
def test_a_second_interrupt_kills_a_shell_command_running_on_a_dask_worker(tmp_path: Path) -> None:
    pytest.importorskip("opus_shell", reason="needs the opus-shell plugin installed")
    pytest.importorskip("distributed", reason="needs the dask extra installed")
    doc = shell_task("sh", "sleep 3600 & echo $! > child.pid; echo $$ > sh.pid; wait")
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(doc))
    child = start(tmp_path, "apply", "-f", "t.yaml", "--state", "sqlite:///s.db",
                  "--executor", "dask://?processes=1")  # fmt: skip
    try:
        wait_for(lambda: (tmp_path / "child.pid").exists(), timeout=60)
        child.send_signal(signal.SIGINT)
        time.sleep(0.5)
        assert child.poll() is None, "the first interrupt waits for running tasks"
        child.send_signal(signal.SIGINT)
        out, err = finish(child, timeout=15)
    finally:
        if child.poll() is None:
            child.kill()
    pids = [int((tmp_path / name).read_text()) for name in ("sh.pid", "child.pid")]
    try:
        assert child.returncode == 130, err
        for pid in pids:  # the command's group, started by the worker process
            wait_for(lambda pid=pid: not pid_alive(pid), timeout=5)
    finally:
        for pid in pids:  # leave nothing behind when the test fails
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["flag", "env"])
def test_cli_task_timeout_flag_and_env(tmp_path: Path, how: str) -> None:
    pytest.importorskip("opus_shell", reason="needs the opus-shell plugin installed")
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(shell_task("s", "sleep 3600")))
    extra = ["--task-timeout", "0.5"] if how == "flag" else []
    env = {"OPUS_TASK_TIMEOUT": "0.5"} if how == "env" else {}
    done = run_opus(tmp_path, *APPLY_JSON, *extra, plugins=(), env=env)
    assert done.returncode == 1, done.stderr
    assert "timed out after 0.5s" in json.loads(done.stdout)["tasks"]["s"]["error"]
