"""Confirmation before destructive runs: ``Proceed? [y/N]`` on a terminal, ``--yes`` / config
``assume_yes`` to skip it, refusal (exit 2) without a terminal, protected contexts."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers_cli import hello, invoke, state_url
from helpers_cli import write_manifest as write_docs

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs pseudo-terminals")


def write_manifest(path: Path, *docs: dict) -> Path:
    return write_docs(path, docs)


@pytest.fixture
def applied(tmp_path: Path) -> Path:
    write_manifest(tmp_path / "t.yaml", hello("a"), hello("b", dependencies=[{"tasks": ["a"]}]))
    for context in ("dev", "prod"):
        result = invoke(
            tmp_path, "apply", "-f", "t.yaml", "--context", context, "--state", state_url(tmp_path)
        )
        assert result.returncode == 0, result.stderr
    return tmp_path


def recorded(workdir: Path, context: str = "dev") -> list[str]:
    out = invoke(
        workdir, "state", "list", "--context", context, "--state", state_url(workdir), "-o", "json"
    ).stdout
    return [r["name"] for r in json.loads(out)]


def commands_run(workdir: Path) -> list[str]:
    out = invoke(workdir, "runs", "list", "--state", state_url(workdir), "-o", "json").stdout
    return [r["command"] for r in json.loads(out)]


class Terminal:
    """``python -m opus ARGS`` on a pseudo-terminal: read what it shows, type answers."""

    def __init__(self, workdir: Path, *args: str) -> None:
        self.master, slave = os.openpty()
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPUS_")}
        env.update(TERM="dumb", COLUMNS="120", NO_COLOR="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "opus", *args],
            cwd=workdir, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True,
        )  # fmt: skip
        os.close(slave)
        self.seen = ""

    def read_until(self, pattern: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.seen):
            left = deadline - time.monotonic()
            assert left > 0, f"no {pattern!r} in {self.seen!r}"
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:
                    chunk = b""
                assert chunk, f"the process ended before {pattern!r}: {self.seen!r}"
                self.seen += chunk.decode("utf-8", "replace")
        return self.seen

    def type(self, text: str) -> None:
        os.write(self.master, text.encode() + b"\r")

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        deadline = time.monotonic() + timeout
        while True:
            ready, _, _ = select.select(
                [self.master], [], [], max(0.0, deadline - time.monotonic())
            )
            chunk = b""
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:
                    chunk = b""
            if not chunk:
                break
            self.seen += chunk.decode("utf-8", "replace")
        code = self.proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        os.close(self.master)
        return code, self.seen


def delete_on_terminal(workdir: Path, *extra: str) -> Terminal:
    return Terminal(
        workdir, "delete", "-f", "t.yaml", "--context", "dev", "--state", state_url(workdir), *extra
    )


# -- without a terminal --------------------------------------------------------------------------


def test_piped_delete_refuses_without_yes_and_changes_nothing(applied: Path) -> None:
    before = commands_run(applied)
    url = state_url(applied)
    result = invoke(applied, "delete", "-f", "t.yaml", "--context", "dev", "--state", url)
    assert result.returncode == 2
    assert result.stderr.startswith("error: opus delete would destroy 2 task(s) in context 'dev'")
    assert "pass --yes (-y) to proceed" in result.stderr and "Nothing was changed" in result.stderr
    assert recorded(applied) == ["a", "b"] and (applied / "out" / "a.txt").exists()
    assert commands_run(applied) == before  # no run was even started


@pytest.mark.parametrize(
    ("args", "env", "config"),
    [
        (("--yes",), {}, ""),
        (("-y",), {}, ""),
        ((), {"OPUS_ASSUME_YES": "1"}, ""),
        ((), {}, "assume_yes: true\n"),
    ],
)
def test_yes_flag_env_or_config_skips_the_question(
    applied: Path, args: tuple[str, ...], env: dict[str, str], config: str
) -> None:
    if config:
        (applied / "opus.yaml").write_text(config)
    url = state_url(applied)
    result = invoke(
        applied, "delete", "-f", "t.yaml", "--context", "dev", "--state", url, *args, env=env
    )
    assert result.returncode == 0, result.stderr
    assert recorded(applied) == [] and not (applied / "out" / "a.txt").exists()
    assert recorded(applied, "prod") == ["a", "b"]


def test_nothing_to_destroy_needs_no_confirmation(tmp_path: Path) -> None:
    write_manifest(tmp_path / "t.yaml", hello("a"))
    url = state_url(tmp_path)
    assert invoke(tmp_path, "delete", "-f", "t.yaml", "--state", url).returncode == 0
    # and an apply that only creates and updates is never asked about
    assert invoke(tmp_path, "apply", "-f", "t.yaml", "--state", url).returncode == 0
    write_manifest(tmp_path / "t.yaml", hello("a", "changed"))
    assert invoke(tmp_path, "apply", "-f", "t.yaml", "--state", url).returncode == 0


# -- on a terminal -------------------------------------------------------------------------------


@pytest.mark.parametrize("answer", ["n", ""])
def test_terminal_delete_shows_the_plan_and_no_cancels(applied: Path, answer: str) -> None:
    term = delete_on_terminal(applied)
    shown = term.read_until(r"Proceed\? \[y/N\]")
    assert "opus delete would destroy 2 task(s) in context 'dev'" in shown
    assert shown.index("- delete b") < shown.index("- delete a")  # dependents first
    term.type(answer)
    code, seen = term.finish()
    assert code == 1 and "cancelled: nothing was changed" in seen
    assert recorded(applied) == ["a", "b"] and (applied / "out" / "b.txt").exists()


def test_terminal_delete_proceeds_on_yes(applied: Path) -> None:
    term = delete_on_terminal(applied)
    term.read_until(r"Proceed\? \[y/N\]")
    term.type("y")
    code, seen = term.finish()
    assert code == 0, seen
    assert recorded(applied) == [] and not (applied / "out" / "a.txt").exists()


def test_terminal_delete_with_yes_does_not_ask(applied: Path) -> None:
    code, seen = delete_on_terminal(applied, "--yes").finish()
    assert code == 0 and "Proceed?" not in seen
    assert recorded(applied) == []


# -- protected contexts --------------------------------------------------------------------------


@pytest.fixture
def protected(applied: Path) -> Path:
    (applied / "opus.yaml").write_text("protected: [prod]\n")
    write_manifest(applied / "t.yaml", hello("a", "new content"), hello("b"))
    return applied


def test_protected_context_needs_yes_even_to_apply(protected: Path) -> None:
    url = state_url(protected)
    result = invoke(protected, "apply", "-f", "t.yaml", "--context", "prod", "--state", url)
    assert result.returncode == 2
    assert "context 'prod' is protected (config 'protected')" in result.stderr
    assert "pass --yes" in result.stderr
    assert (protected / "out" / "a.txt").read_text() == "hi"
    # read-only commands are not asked about; other contexts are not protected
    plan = invoke(protected, "plan", "-f", "t.yaml", "--context", "prod", "--state", url)
    assert plan.returncode == 3, plan.stderr
    dev = invoke(protected, "apply", "-f", "t.yaml", "--context", "dev", "--state", url)
    assert dev.returncode == 0, dev.stderr
    # in CI, --yes alone is enough
    prod = invoke(protected, "apply", "-f", "t.yaml", "--context", "prod", "--state", url, "-y")
    assert prod.returncode == 0, prod.stderr
    shown = json.loads(invoke(protected, "config", "-o", "json").stdout)["settings"]["protected"]
    assert shown == {"value": ["prod"], "source": "config file", "envvar": None}
    text = invoke(protected, "config").stdout
    assert re.search(r'^protected\s+\["prod"\]\s+\(config file\)$', text, re.M), text


@pytest.mark.parametrize(("typed", "code"), [("prod", 0), ("y", 1), ("dev", 1)])
def test_protected_context_on_a_terminal_wants_its_name_typed(
    protected: Path, typed: str, code: int
) -> None:
    url = state_url(protected)
    term = Terminal(
        protected, "delete", "-f", "t.yaml", "--context", "prod", "--state", url, "--yes"
    )
    shown = term.read_until(r"Type the context name \(prod\) to proceed")
    assert "opus delete will change protected context 'prod'" in shown
    assert "- delete a" in shown and "- delete b" in shown
    term.type(typed)
    got, seen = term.finish()
    assert got == code, seen
    assert recorded(protected, "prod") == ([] if code == 0 else ["a", "b"])


def test_protected_context_on_a_terminal_without_yes_refuses(protected: Path) -> None:
    url = state_url(protected)
    term = Terminal(protected, "delete", "-f", "t.yaml", "--context", "prod", "--state", url)
    code, seen = term.finish()
    assert code == 2 and "pass --yes and type the context name when asked" in seen
    assert recorded(protected, "prod") == ["a", "b"]


def test_the_python_api_never_asks(applied: Path) -> None:
    script = (
        "from opus import Engine\n"
        "import yaml\n"
        f"engine = Engine(state={state_url(applied)!r})\n"
        "tasks = list(yaml.safe_load_all(open('t.yaml')))\n"
        "result = engine.run('delete', tasks, context='dev')\n"
        "print('deleted', sorted(result.tasks), result.ok)\n"
    )
    master, slave = os.openpty()  # a terminal on stdin: still no question
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=applied, stdin=slave, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    os.close(slave)
    os.close(master)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "deleted ['a', 'b'] True"
    assert recorded(applied) == []


# -- apply that replaces or prunes ---------------------------------------------------------------


def test_piped_apply_that_replaces_or_prunes_refuses_without_yes(applied: Path) -> None:
    url = state_url(applied)
    args = ("apply", "-f", "t.yaml", "--context", "dev", "--state", url)
    # hello-world/v1 replaces on a new path
    write_manifest(
        applied / "t.yaml",
        {**hello("a"), "spec": {"path": "out/a2.txt", "content": "hi"}},
        hello("b", dependencies=[{"tasks": ["a"]}]),
    )
    refused = invoke(applied, *args)
    assert refused.returncode == 2, refused.stderr
    assert "would destroy 1 task(s) in context 'dev' (a)" in refused.stderr
    assert "pass --yes (-y)" in refused.stderr
    assert (applied / "out" / "a.txt").exists() and not (applied / "out" / "a2.txt").exists()
    done = invoke(applied, *args, "--yes")
    assert done.returncode == 0, done.stderr
    assert not (applied / "out" / "a.txt").exists() and (applied / "out" / "a2.txt").exists()
    # an orphan: nothing is destroyed without --prune, so nothing is asked
    write_manifest(
        applied / "t.yaml", {**hello("a"), "spec": {"path": "out/a2.txt", "content": "hi"}}
    )
    kept = invoke(applied, *args)
    assert kept.returncode == 0, kept.stderr
    assert recorded(applied) == ["a", "b"]
    pruning = invoke(applied, *args, "--prune")
    assert pruning.returncode == 2 and "(b)" in pruning.stderr
    assert recorded(applied) == ["a", "b"] and (applied / "out" / "b.txt").exists()
    assert invoke(applied, *args, "--prune", "-y").returncode == 0
    assert recorded(applied) == ["a"] and not (applied / "out" / "b.txt").exists()


def test_terminal_apply_that_replaces_shows_it_and_asks(applied: Path) -> None:
    write_manifest(
        applied / "t.yaml",
        {**hello("a"), "spec": {"path": "out/a2.txt", "content": "hi"}},
        hello("b", dependencies=[{"tasks": ["a"]}]),
    )
    term = Terminal(applied, "apply", "-f", "t.yaml", "--context", "dev", "--state",
                    state_url(applied))  # fmt: skip
    shown = term.read_until(r"Proceed\? \[y/N\]")
    assert "-/+ replace a" in shown
    term.type("y")
    code, seen = term.finish()
    assert code == 0, seen
    assert (applied / "out" / "a2.txt").exists() and not (applied / "out" / "a.txt").exists()
