"""Text from tasks is printed as it is (never as rich markup or emoji codes), and every
timeout input is a finite number of seconds in a sane range (``MAX_TIMEOUT``).

Through the CLI where possible: ``python -m opus`` in a subprocess (``run_opus``) or
in-process (``invoke``); the live view needs a terminal, so it is driven directly.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from helpers_cli import PROCS_MODULE, invoke, run_opus, task, write_manifest, write_procs
from support_processors import make_task

from opus.manifest_schema import MAX_TIMEOUT
from opus.model import TaskOutcome

_ANSI = re.compile(r"\x1b\[[0-9;]*m")

#: Text rich would read as markup (an unmatched closing tag, a style) and as emoji codes.
NASTY = "[/] [bold]b[/bold] ${VAR:a:nope} :thumbs_up: [link=x]y"


def _procs(tmp_path: Path) -> tuple[str, ...]:
    write_procs(tmp_path)
    return (PROCS_MODULE,)


# -- 1. task text is shown literally -------------------------------------------------------


@pytest.mark.parametrize("env", [{}, {"FORCE_COLOR": "1"}], ids=["pipe", "force-color"])
def test_a_shell_error_with_a_closing_tag_is_printed_with_the_table_and_counts(
    tmp_path: Path, env: dict[str, str]
) -> None:
    pytest.importorskip("opus_shell", reason="needs the opus-shell plugin installed")
    command = "tr '[/]' '_' < /nonexistent"
    doc = task("shell/v1", "bad", {"create": command}, kind="Shell")
    write_manifest(tmp_path / "x.yaml", [doc])
    done = run_opus(tmp_path, "apply", "-f", "x.yaml", "--state", "memory://", plugins=(), env=env)
    out = _ANSI.sub("", done.stdout)
    assert done.returncode == 1, done.stderr
    assert "unexpected error" not in done.stderr
    assert "┃ task" in out and "│ bad" in out
    assert command in out
    assert re.search(r"^1 rolled back in [\d.]+ s$", out, re.M), out


@pytest.mark.parametrize("env", [{}, {"FORCE_COLOR": "1"}], ids=["pipe", "force-color"])
def test_markup_and_emoji_codes_in_an_error_stay_literal(
    tmp_path: Path, env: dict[str, str]
) -> None:
    message = NASTY.replace("${", "$${")  # $${...}: a literal ${...}, not a reference
    write_manifest(tmp_path / "x.yaml", [task("cli-test/fail-v1", "f", {"message": message})])
    done = run_opus(
        tmp_path, "apply", "-f", "x.yaml", "--state", "memory://", plugins=_procs(tmp_path), env=env
    )
    out = _ANSI.sub("", done.stdout)
    assert done.returncode == 1, done.stderr
    assert f"boom: {NASTY}" in out
    assert f"boom: {NASTY}" in done.stderr  # the plain progress line
    assert "🅰" not in out and "👍" not in out
    assert re.search(r"^1 (failed|rolled back) in [\d.]+ s$", out, re.M), out


def test_runs_show_prints_a_recorded_error_literally(tmp_path: Path) -> None:
    message = NASTY.replace("${", "$${")
    write_manifest(tmp_path / "x.yaml", [task("cli-test/fail-v1", "f", {"message": message})])
    procs = _procs(tmp_path)
    state = ("--state", "sqlite:///s.db")
    assert run_opus(tmp_path, "apply", "-f", "x.yaml", *state, plugins=procs).returncode == 1
    runs = run_opus(tmp_path, "runs", "list", *state, "-o", "json", plugins=procs)
    run_id = json.loads(runs.stdout)[0]["run_id"]
    done = run_opus(tmp_path, "runs", "show", run_id, *state, plugins=procs)
    assert done.returncode == 1, done.stderr  # the run failed
    assert "unexpected error" not in done.stderr
    assert f"boom: {NASTY}" in done.stdout and "🅰" not in done.stdout


def test_print_table_shows_cells_and_title_literally() -> None:
    from opus.cli.output import print_table

    out = io.StringIO()  # no encoding: rich draws it
    print_table(f"title {NASTY}", ("col :a:", "[b]"), [(NASTY, "[/]")], out)
    text = out.getvalue()
    assert f"title {NASTY}" in text
    assert NASTY in text and "col :a:" in text and "[b]" in text
    assert "🅰" not in text and "👍" not in text


def test_the_live_view_shows_actions_context_and_errors_literally() -> None:
    from rich.console import Console

    from opus.cli.progress import LiveProgress

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=300, color_system=None)
    view = LiveProgress(console)
    one = make_task("one")
    ctx: Any = type("Ctx", (), {"action": "[/]act:a:"})()
    view.opus_run_start("r1", "cmd[/]:a:", "create", "ctx", [one])
    view.opus_task_start(one, ctx)
    view.live.refresh()  # draws the running line: action and description
    outcome = TaskOutcome("one", "failed", action="create", error=NASTY, duration_s=0.5)
    view.opus_task_failed(one, ctx, outcome)
    view.close()
    text = buffer.getvalue()
    assert NASTY in text
    assert "[/]act:a:" in text and "cmd[/]:a:" in text
    assert "🅰" not in text


# -- 2. timeouts: finite, > 0, at most MAX_TIMEOUT --------------------------------------------

BAD_NUMBERS = ["inf", "-inf", "nan", "1e10", str(MAX_TIMEOUT + 1), "0", "-1"]


def test_max_timeout_is_at_most_a_week_and_what_threads_can_wait() -> None:
    import threading

    assert MAX_TIMEOUT == min(604800.0, threading.TIMEOUT_MAX)


def _quick_manifest(tmp_path: Path) -> Path:
    return write_manifest(tmp_path / "x.yaml", [task("cli-test/slow-v1", "s", {"seconds": 0})])


@pytest.mark.parametrize(
    ("option", "value"),
    [("--task-timeout", v) for v in BAD_NUMBERS]
    + [("--lock-timeout", v) for v in BAD_NUMBERS if v != "0"],  # 0: do not wait
)
def test_a_bad_timeout_option_exits_2_naming_the_option(
    tmp_path: Path, option: str, value: str
) -> None:
    _quick_manifest(tmp_path)
    done = invoke(tmp_path, "apply", "-f", "x.yaml", "--state", "memory://", f"{option}={value}")
    assert done.returncode == 2, done.stdout
    assert option in done.stderr, done.stderr
    assert "┃ task" not in done.stdout


@pytest.mark.parametrize("value", ["inf", "nan", "1e10"])
@pytest.mark.parametrize("var", ["OPUS_TASK_TIMEOUT", "OPUS_LOCK_TIMEOUT"])
def test_a_bad_timeout_env_var_exits_2_naming_it(tmp_path: Path, var: str, value: str) -> None:
    _quick_manifest(tmp_path)
    done = invoke(tmp_path, "apply", "-f", "x.yaml", "--state", "memory://", env={var: value})
    assert done.returncode == 2, done.stdout
    assert var in done.stderr, done.stderr


@pytest.mark.parametrize("value", [".inf", ".nan", "-.inf", "1.0e+10", str(MAX_TIMEOUT + 1)])
@pytest.mark.parametrize("key", ["task_timeout", "lock_timeout"])
def test_a_bad_timeout_in_the_config_file_exits_2_naming_file_and_key(
    tmp_path: Path, key: str, value: str
) -> None:
    _quick_manifest(tmp_path)
    (tmp_path / "opus.yaml").write_text(f"{key}: {value}\n")
    done = invoke(tmp_path, "apply", "-f", "x.yaml", "--state", "memory://")
    assert done.returncode == 2, done.stdout
    assert "opus.yaml" in done.stderr and repr(key) in done.stderr, done.stderr
    assert str(int(MAX_TIMEOUT)) in done.stderr


def test_the_largest_timeouts_are_accepted_and_the_run_works(tmp_path: Path) -> None:
    _quick_manifest(tmp_path)
    (tmp_path / "opus.yaml").write_text(f"task_timeout: {MAX_TIMEOUT}\nlock_timeout: 100000.0\n")
    done = run_opus(
        tmp_path,
        "apply",
        "-f",
        "x.yaml",
        "--state",
        "memory://",
        "--task-timeout",
        str(int(MAX_TIMEOUT)),
        plugins=_procs(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    assert "1 created" in done.stdout


def test_the_option_help_states_the_limit(tmp_path: Path) -> None:
    done = invoke(tmp_path, "apply", "--help")
    assert done.returncode == 0
    assert str(int(MAX_TIMEOUT)) in " ".join(done.stdout.split())


def _manifest_with_timeouts(tmp_path: Path, values: list[str]) -> Path:
    docs = []
    for i, value in enumerate(values):
        docs.append(
            f"apiVersion: cli-test/slow-v1\nkind: Step\nmetadata:\n  name: t{i}\n"
            f"  timeout: {value}\nspec: {{seconds: 0}}\n"
        )
    path = tmp_path / "t.yaml"
    path.write_text("---\n".join(docs))
    return path


BAD_YAML_TIMEOUTS = [".inf", ".nan", "-.inf", "1.0e+10", str(MAX_TIMEOUT + 1)]


@pytest.mark.parametrize("command", ["validate", "apply"])
def test_a_bad_metadata_timeout_is_reported_with_file_and_line(
    tmp_path: Path, command: str
) -> None:
    _manifest_with_timeouts(tmp_path, BAD_YAML_TIMEOUTS)
    extra = ["--state", "memory://"] if command == "apply" else []
    done = run_opus(tmp_path, command, "-f", "t.yaml", *extra, plugins=_procs(tmp_path))
    assert done.returncode == 2, done.stdout + done.stderr
    for i in range(len(BAD_YAML_TIMEOUTS)):
        line = 5 + 7 * i  # each document is 6 lines and a "---"
        assert re.search(
            rf"t\.yaml:{line}, task 't{i}', field 'metadata\.timeout': must be (> 0|.*<= 604800)",
            done.stderr,
        ), done.stderr
    assert "┃ task" not in done.stdout  # nothing ran


def test_good_metadata_timeouts_pass_validate(tmp_path: Path) -> None:
    _manifest_with_timeouts(tmp_path, ["0.5", "30", str(int(MAX_TIMEOUT))])
    done = run_opus(tmp_path, "validate", "-f", "t.yaml", plugins=_procs(tmp_path))
    assert done.returncode == 0, done.stderr


def test_the_metadata_schema_bounds_timeout() -> None:
    from opus.manifest_schema import metadata_schema

    rule = metadata_schema()["properties"]["timeout"]
    assert rule["maximum"] == MAX_TIMEOUT and rule["exclusiveMinimum"] == 0


def test_the_live_views_console_prints_strings_literally(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the live view's redirected stderr hands its console as a string (a plugin's
    partial line when it is flushed) must not be read as markup."""
    from opus.cli.progress import LiveProgress, make_progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stderr", Terminal())
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setenv("FORCE_COLOR", "1")
    view = make_progress(output="text", progress=True, verbosity=0)
    assert isinstance(view, LiveProgress)
    view.console.print(NASTY)
    assert NASTY in _ANSI.sub("", view.console.file.getvalue())  # type: ignore[attr-defined]


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "1e10"])
def test_state_migrate_refuses_a_bad_lock_timeout(tmp_path: Path, value: str) -> None:
    args = ["--from", "memory://", "--to", "memory://", f"--lock-timeout={value}"]
    done = invoke(tmp_path, "state", "migrate", *args)
    assert done.returncode == 2, done.stdout
    assert "--lock-timeout" in done.stderr and str(int(MAX_TIMEOUT)) in done.stderr
