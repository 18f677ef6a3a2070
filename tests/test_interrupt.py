"""Ctrl-C and SIGTERM: stop starting tasks, let running ones finish, save state, exit 130."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from timeline_procs import TimelineProcessor, step

from opus import Engine, Plugins


# -- in process: the signal reaches the driver while a task runs -----------------------------
class SignallingProcessor(TimelineProcessor):
    """Sends this process ``spec.signals`` SIGINTs from inside the action, then goes on."""

    api_version = "signalling/v1"

    def create(self, t, ctx):  # noqa: ANN001
        for _ in range(ctx.spec.get("signals", 0)):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # let the main thread run the handler
        return super().create(t, ctx)


def test_sigint_in_process_lets_running_tasks_finish() -> None:
    proc, sig = TimelineProcessor(), SignallingProcessor()
    engine = Engine(state="memory://", plugins=Plugins(entry_points=False), parallelism=2)
    engine.register_processor(proc)
    engine.register_processor(sig)
    tasks = [
        step("sender", api_version=sig.api_version, signals=1, sleep=0.1),
        step("busy", sleep=0.3, value="finished"),
        *(step(f"later{i}") for i in range(3)),
        step("child", "sender"),
    ]
    with engine:
        result = engine.run("apply", tasks, context="dev")
        records = {r.name for r in engine.state.list_records("dev")}
    assert result.interrupted and not result.ok
    assert result.tasks["sender"].status == "done"
    assert result.tasks["busy"].status == "done"
    assert result.tasks["busy"].outputs["value"] == "finished"
    assert {result.tasks[f"later{i}"].status for i in range(3)} == {"skipped"}
    assert result.tasks["child"].error == "interrupted"
    assert records == {"sender", "busy"}
    # the handler is restored afterwards
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_second_sigint_stops_waiting() -> None:
    proc, sig = TimelineProcessor(), SignallingProcessor()
    engine = Engine(state="memory://", plugins=Plugins(entry_points=False), parallelism=2)
    engine.register_processor(proc)
    engine.register_processor(sig)
    tasks = [
        step("sender", api_version=sig.api_version, signals=2),
        step("stuck", wait_for="release"),
    ]
    try:
        with engine:
            result = engine.run("apply", tasks)
    finally:
        proc.event("release").set()
    assert result.interrupted
    assert result.tasks["stuck"].status == "failed"
    assert "interrupted while running" in result.tasks["stuck"].error


# -- a real `opus apply` process --------------------------------------------------------------
PLUGIN = textwrap.dedent("""
    import os, time
    import opus

    LOG = os.environ["OPUS_EVENTS"]

    def event(what, name):
        with open(LOG, "a") as handle:
            handle.write(f"{what} {name}\\n")

    class Sleepy(opus.TaskProcessor):
        api_version = "sleepy/v1"

        def create(self, task, ctx):
            event("start", task.name)
            time.sleep(ctx.spec["sleep"])
            event("done", task.name)
            return {"slept": ctx.spec["sleep"]}

    @opus.hookimpl
    def opus_register_processors():
        return [Sleepy]
""")


def events(path: Path) -> list[tuple[str, str]]:
    if not path.exists():
        return []
    return [tuple(line.split()) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_cli_interrupt_exits_130_with_consistent_state(tmp_path: Path, signum: int) -> None:
    (tmp_path / "sleepy_plugin.py").write_text(PLUGIN)
    manifests = tmp_path / "tasks.yaml"
    manifests.write_text(
        "---\n".join(
            f"apiVersion: sleepy/v1\nkind: Nap\nmetadata: {{name: nap{i}}}\nspec: {{sleep: 0.6}}\n"
            for i in range(8)
        )
    )
    log, db = tmp_path / "events.log", tmp_path / "state.db"
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "OPUS_EVENTS": str(log)}
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "opus",
            "-p",
            "sleepy_plugin",
            "apply",
            "-f",
            str(manifests),
            "--state",
            f"sqlite:///{db}",
            "--context",
            "ci",
            "--parallelism",
            "2",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while sum(1 for e in events(log) if e[0] == "start") < 2:
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the run never started two tasks"
            time.sleep(0.02)
        child.send_signal(signum)
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 130, err
    seen = events(log)
    started = {name for what, name in seen if what == "start"}
    finished = {name for what, name in seen if what == "done"}
    assert started == finished, "tasks running at the signal were allowed to finish"
    assert 2 <= len(started) < 8

    state = Plugins(entry_points=False).state_backend(f"sqlite:///{db}")
    try:
        records = {r.name: r for r in state.list_records("ci")}
        runs = state.list_runs("ci")
        lock = state.get_lock("ci")
    finally:
        state.close()
    assert set(records) == finished
    assert all(r.status == "done" and r.outputs == {"slept": 0.6} for r in records.values())
    assert [r.status for r in runs] == ["interrupted"]
    assert lock is None
