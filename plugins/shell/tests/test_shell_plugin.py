"""Tests of the shell/v1 processor with real subprocesses."""

from __future__ import annotations

import importlib.metadata
import logging
import shutil
import time
from pathlib import Path

import opus_shell
import pluggy
import pytest
from opus_shell import ShellCommandError, ShellProcessor, redact_spec
from opus_shell.outputs import parse_stdout
from opus_shell.runner import group_alive

from opus import Engine, OpusError, Task, TaskContext, TaskState
from opus.testing import task_context

SECRET = "s3cr3t-Value-42"


@pytest.fixture
def proc() -> ShellProcessor:
    return ShellProcessor()


def make(name: str, spec: dict) -> Task:
    return Task(api_version="shell/v1", kind="Shell", metadata={"name": name}, spec=spec)


def ctx_for(task: Task, action: str, state: TaskState | None = None, **kw) -> TaskContext:
    return task_context(task, action, state=state, context="dev", run_id="run-1", **kw)


def pid_running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie nobody reaped yet counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


# -- running commands and outputs ---------------------------------------------------------


def test_create_captures_stdout_stderr_and_key_values(proc) -> None:
    task = make(
        "t", {"create": "echo hello; echo VERSION=1.2.3; echo 'URL=http://x/?a=b'; echo oops >&2"}
    )
    out = proc.create(task, ctx_for(task, "create")).outputs
    assert out["exit_code"] == 0
    assert out["stdout"] == "hello\nVERSION=1.2.3\nURL=http://x/?a=b"
    assert out["stderr"] == "oops"
    assert out["VERSION"] == "1.2.3" and out["URL"] == "http://x/?a=b"


def test_json_object_stdout_is_merged_into_outputs(proc) -> None:
    task = make("j", {"create": """printf '{"replicas": 3, "tags": ["a"], "stdout": "x"}'"""})
    out = proc.create(task, ctx_for(task, "create")).outputs
    assert out["replicas"] == 3 and out["tags"] == ["a"]
    assert out["stdout"].startswith("{"), "the fixed keys win over parsed ones"


def test_parse_stdout_rules() -> None:
    assert parse_stdout("[1, 2]\nA=1") == {"A": "1"}
    assert parse_stdout("{not json\nB=2\n") == {"B": "2"}
    assert parse_stdout("A=1\nA=2\n 1X=3\nno equals\nC=\n") == {"A": "2", "C": ""}


def test_nonzero_exit_raises_with_exit_code_and_stderr_tail(proc) -> None:
    lines = "; ".join(f"echo line{i} >&2" for i in range(40))
    task = make("bad", {"create": f"{lines}; exit 7"})
    with pytest.raises(ShellCommandError) as info:
        proc.create(task, ctx_for(task, "create"))
    message = str(info.value)
    assert "exited 7" in message and "'bad'" in message
    assert "line39" in message and "line5\n" not in message, "only the tail of stderr is quoted"
    assert info.value.exit_code == 7


def test_list_of_commands_runs_in_order_and_stops_at_failure(proc, tmp_path) -> None:
    log = tmp_path / "log"
    task = make(
        "l",
        {
            "create": [
                f"echo one >> {log}",
                "echo A=1",
                f"echo two >> {log}; false",
                f"echo three >> {log}",
            ]
        },
    )
    with pytest.raises(ShellCommandError, match="exited 1"):
        proc.create(task, ctx_for(task, "create"))
    assert log.read_text() == "one\ntwo\n"


def test_cwd_env_and_opus_variables(proc, tmp_path) -> None:
    task = make(
        "envy",
        {
            "create": 'echo "DIR=$(pwd)"; echo "GREETING=$GREETING"; echo "N=$N"; '
            'echo "CTX=$OPUS_CONTEXT/$OPUS_TASK/$OPUS_ACTION/$OPUS_RUN_ID"',
            "cwd": str(tmp_path),
            "env": {"GREETING": "hi there", "N": 5},
        },
    )
    out = proc.create(task, ctx_for(task, "create")).outputs
    assert out["DIR"] == str(tmp_path)
    assert out["GREETING"] == "hi there" and out["N"] == "5"
    assert out["CTX"] == "dev/envy/create/run-1"


def test_inherit_env_false_drops_the_parent_environment(proc, monkeypatch) -> None:
    monkeypatch.setenv("OPUS_TEST_PARENT", "visible")
    task = make("e", {"create": 'echo "P=${OPUS_TEST_PARENT:-unset}"', "inheritEnv": False})
    assert proc.create(task, ctx_for(task, "create")).outputs["P"] == "unset"
    task = make("e", {"create": 'echo "P=${OPUS_TEST_PARENT:-unset}"'})
    assert proc.create(task, ctx_for(task, "create")).outputs["P"] == "visible"


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
def test_shell_option_selects_the_interpreter(proc) -> None:
    task = make("b", {"create": 'echo "V=${BASH_VERSION:+bash}"', "shell": shutil.which("bash")})
    assert proc.create(task, ctx_for(task, "create")).outputs["V"] == "bash"


def test_missing_cwd_and_bad_spec_are_clear_errors(proc, tmp_path) -> None:
    task = make("c", {"create": "true", "cwd": str(tmp_path / "nope")})
    with pytest.raises(OpusError, match="spec.cwd"):
        proc.create(task, ctx_for(task, "create"))
    for spec, field in [
        ({"create": "true", "colour": 1}, "spec.colour"),
        ({"create": 3}, "spec.create"),
        ({"create": "true", "timeout": -1}, "spec.timeout"),
        ({"create": "true", "env": {"A": {"sensitive": True}}}, "spec.env.A"),
        ({"update": "true"}, "spec.create"),
    ]:
        task = make("c", spec)
        with pytest.raises(OpusError, match=field.replace(".", r"\.")):
            proc.create(task, ctx_for(task, "create"))


# -- actions ------------------------------------------------------------------------------


def test_update_uses_update_command_or_falls_back_to_create(proc) -> None:
    both = make("u", {"create": "echo DID=create", "update": "echo DID=update"})
    assert proc.update(both, ctx_for(both, "update")).outputs["DID"] == "update"
    only_create = make("u", {"create": "echo DID=create"})
    assert proc.update(only_create, ctx_for(only_create, "update")).outputs["DID"] == "create"


def test_delete_runs_command_or_does_nothing(proc, tmp_path) -> None:
    marker = tmp_path / "m"
    marker.write_text("x")
    task = make("d", {"create": "true", "delete": f"rm {marker}"})
    proc.delete(task, ctx_for(task, "delete"))
    assert not marker.exists()
    nothing = make("d", {"create": "true"})
    assert "nothing to do" in (proc.delete(nothing, ctx_for(nothing, "delete")).message or "")


def test_check_command_decides_drift(proc, tmp_path) -> None:
    marker = tmp_path / "present"
    task = make(
        "c",
        {"create": f"touch {marker}", "check": f"test -f {marker} || {{ echo missing; exit 1; }}"},
    )
    proc.create(task, ctx_for(task, "create"))
    assert proc.detect_drift(task, ctx_for(task, "detect_drift")).drifted is False
    marker.unlink()
    drift = proc.detect_drift(task, ctx_for(task, "detect_drift"))
    assert drift.drifted is True and "missing" in drift.message
    no_check = make("c", {"create": "true"})
    assert proc.detect_drift(no_check, ctx_for(no_check, "detect_drift")).drifted is False


def test_rollback_command_gets_failed_action_and_error(proc) -> None:
    task = make(
        "r",
        {
            "create": "exit 3",
            "rollback": 'echo "UNDO=$OPUS_FAILED_ACTION:$OPUS_ACTION"; echo "ERR=$OPUS_ERROR"',
        },
    )
    with pytest.raises(ShellCommandError) as info:
        proc.create(task, ctx_for(task, "create"))
    result = proc.rollback(
        task,
        ctx_for(task, "rollback", failed_action="create", error=str(info.value).splitlines()[0]),
    )
    assert result.outputs["UNDO"] == "create:rollback"
    assert "exited 3" in result.outputs["ERR"]
    plain = make("r", {"create": "true"})
    assert (
        proc.rollback(plain, ctx_for(plain, "rollback", failed_action="create")).message
        == "no rollback command"
    )


def test_describe_runs_command_or_reports_recorded_outputs(proc) -> None:
    task = make("ds", {"create": "true", "describe": "echo STATUS=ok"})
    assert proc.describe(task, ctx_for(task, "describe")).outputs["STATUS"] == "ok"
    plain = make("ds", {"create": "true"})
    state = TaskState(context="dev", name="ds", outputs={"A": "1"})
    result = proc.describe(plain, ctx_for(plain, "describe", state))
    assert result.outputs == {"A": "1"} and result.details["commands"] == ["create"]


# -- timeouts -----------------------------------------------------------------------------


def test_timeout_kills_the_whole_process_group(proc, tmp_path) -> None:
    pidfile = tmp_path / "child.pid"
    task = make(
        "slow",
        {
            "create": f"sleep 60 & echo $! > {pidfile}; wait",
            "timeout": 1,
            "killGrace": 0.5,
        },
    )
    started = time.monotonic()
    with pytest.raises(ShellCommandError, match="timed out after 1s") as info:
        proc.create(task, ctx_for(task, "create"))
    assert time.monotonic() - started < 10
    assert info.value.timed_out
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while pid_running(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_running(child), f"background child {child} survived the timeout"


def test_timeout_escalates_to_sigkill_for_children_ignoring_sigterm(proc, tmp_path) -> None:
    pidfile = tmp_path / "stubborn.pid"
    script = f"sh -c 'trap \"\" TERM; echo $$ > {pidfile}; while :; do sleep 0.1; done' & wait"
    task = make("stubborn", {"create": script, "timeout": 1, "killGrace": 0.5})
    with pytest.raises(ShellCommandError, match="timed out"):
        proc.create(task, ctx_for(task, "create"))
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while pid_running(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_running(child)
    assert not group_alive(child)


# -- sensitive values ---------------------------------------------------------------------


def secret_task(create: str, **extra) -> Task:
    return make(
        "sec",
        {
            "create": create,
            "env": {"TOKEN": {"value": SECRET, "sensitive": True}, "PLAIN": "visible"},
            **extra,
        },
    )


def test_sensitive_values_are_masked_in_outputs(proc) -> None:
    task = secret_task('echo "TOKEN=$TOKEN"; echo "token is $TOKEN" >&2; echo "PLAIN=$PLAIN"')
    out = proc.create(task, ctx_for(task, "create")).outputs
    assert out["TOKEN"] == "***" and out["PLAIN"] == "visible"
    assert SECRET not in repr(out)
    assert out["stderr"] == "token is ***"


def test_sensitive_values_are_masked_in_json_outputs(proc) -> None:
    task = secret_task("""printf '{"auth": {"header": "Bearer %s"}}' "$TOKEN" """)
    out = proc.create(task, ctx_for(task, "create")).outputs
    assert out["auth"] == {"header": "Bearer ***"}


def test_sensitive_values_are_masked_in_errors_and_logs(proc) -> None:
    task = secret_task(f'echo "bad token $TOKEN" >&2; echo {SECRET} >/dev/null; exit 2')
    ctx = ctx_for(task, "create")
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append  # type: ignore[method-assign]
    watched = [ctx.logger, logging.getLogger("opus_shell")]
    saved = [(lg, lg.level, lg.disabled) for lg in watched]
    for lg in watched:  # independent of how other tests configured logging
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
        lg.disabled = False
    try:
        with pytest.raises(ShellCommandError) as info:
            proc.create(task, ctx)
    finally:
        for lg, level, disabled in saved:
            lg.removeHandler(handler)
            lg.setLevel(level)
            lg.disabled = disabled
    assert "exited 2" in str(info.value) and "bad token ***" in str(info.value)
    assert SECRET not in str(info.value) and SECRET not in info.value.stderr
    assert any("running" in r.getMessage() for r in records), "the command is logged"
    assert all(SECRET not in r.getMessage() for r in records)


def test_sensitive_env_list_marks_plain_and_inherited_values(proc, monkeypatch) -> None:
    monkeypatch.setenv("OPUS_TEST_INHERITED", "inherited-secret-9")
    task = make(
        "se",
        {
            "create": 'echo "A=$API_KEY"; echo "B=$OPUS_TEST_INHERITED"',
            "env": {"API_KEY": "key-123456"},
            "sensitiveEnv": ["API_KEY", "OPUS_TEST_INHERITED"],
        },
    )
    out = proc.create(task, ctx_for(task, "create")).outputs
    assert out["A"] == "***" and out["B"] == "***"


def test_redact_masks_env_and_any_text_containing_the_secret(proc) -> None:
    spec = {
        "create": f"curl -H 'Authorization: {SECRET}' http://example.invalid",
        "env": {"TOKEN": {"value": SECRET, "sensitive": True}, "KEY": "k-777777", "PLAIN": "p"},
        "sensitiveEnv": ["KEY"],
        "cwd": "/tmp",
    }
    redacted = proc.redact(spec)
    assert redacted["env"]["TOKEN"] == {"value": "***", "sensitive": True}
    assert redacted["env"]["KEY"] == "***" and redacted["env"]["PLAIN"] == "p"
    assert redacted["create"] == "curl -H 'Authorization: ***' http://example.invalid"
    assert SECRET not in repr(redacted) and "k-777777" not in repr(redacted)
    assert spec["env"]["TOKEN"]["value"] == SECRET, "the input is not modified"
    assert redact_spec({"create": "true"}) == {"create": "true"}
    assert redact_spec({"env": "not a mapping", "sensitiveEnv": 3}) == {
        "env": "not a mapping",
        "sensitiveEnv": 3,
    }


def test_engine_stores_the_redacted_spec_and_masked_outputs(tmp_path) -> None:
    engine = Engine(state="memory://", entry_points=False)
    engine.register_processor(ShellProcessor)
    good = {
        "apiVersion": "shell/v1",
        "kind": "Shell",
        "metadata": {"name": "ok"},
        "spec": {
            "create": 'echo "T=$TOKEN"',
            "env": {"TOKEN": {"value": SECRET, "sensitive": True}},
        },
    }
    bad = {
        "apiVersion": "shell/v1",
        "kind": "Shell",
        "metadata": {"name": "bad"},
        "spec": {
            "create": 'echo "no: $TOKEN" >&2; exit 4',
            "rollback": f"touch {tmp_path / 'rolled-back'}",
            "env": {"TOKEN": {"value": SECRET, "sensitive": True}},
        },
    }
    result = engine.run("apply", [good, bad], context="dev", variables={})
    assert result.tasks["ok"].status == "done"
    assert result.tasks["ok"].outputs["T"] == "***"
    assert result.tasks["bad"].status == "rolled_back"
    assert "exited 4" in result.tasks["bad"].error and SECRET not in result.tasks["bad"].error
    assert (tmp_path / "rolled-back").exists()
    stored = engine.state.get("dev", "ok")
    assert stored.applied_spec["env"]["TOKEN"]["value"] == "***"
    assert SECRET not in repr(stored.to_dict())
    again = engine.run("apply", [good], context="dev", variables={})
    assert again.tasks["ok"].status == "unchanged", "redaction does not make the spec look changed"


# -- plugin wiring ------------------------------------------------------------------------


def test_hookimpl_registers_the_processor() -> None:
    from opus import hookspecs

    pm = pluggy.PluginManager("opus")
    pm.add_hookspecs(hookspecs)
    pm.register(opus_shell)
    registered = [p for group in pm.hook.opus_register_processors() for p in group]
    # registered lazily: the processor module is imported when a task uses shell/v1
    assert [(p.api_version, p.load("shell")) for p in registered] == [("shell/v1", ShellProcessor)]
    assert set(ShellProcessor.supported_actions()) == {
        "create",
        "update",
        "delete",
        "describe",
        "detect_drift",
        "rollback",
    }


def test_entry_point_is_declared() -> None:
    try:
        dist = importlib.metadata.distribution("opus-shell")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("opus-shell is not installed (pip install -e plugins/shell)")
    eps = [ep for ep in dist.entry_points if ep.group == "opus"]
    assert [(ep.name, ep.value) for ep in eps] == [("shell", "opus_shell")]
    assert eps[0].load() is opus_shell


def test_a_command_error_survives_pickling() -> None:
    # a Dask worker sends it back to the driver: it could not be rebuilt (keyword-only
    # fields), and the driver reported "cannot read its result" instead of the command's error
    import pickle

    error = ShellCommandError("create command exited 3: boom", exit_code=3, stderr="boom")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is ShellCommandError and str(copy) == str(error)
    assert (copy.exit_code, copy.stderr, copy.timed_out) == (3, "boom", False)
