"""``--output markdown`` for plan, drift and apply, and the CI job of docs/ci.md."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from helpers_cli import hello, invoke, state_url, task
from helpers_cli import write_manifest as write_docs

REPO = Path(__file__).resolve().parents[2]


def write_manifest(path: Path, *docs: dict) -> Path:
    return write_docs(path, docs)


SECRET_PROCS = textwrap.dedent('''
    import opus
    from opus import TaskProcessor


    class Secretive(TaskProcessor):
        """Keeps a spec; its redact() hides the 'token' key."""

        api_version = "md-test/secret-v1"

        def create(self, task, ctx):
            return {}

        update = create

        def redact(self, spec):
            return {**spec, "token": "<redacted by processor>"} if "token" in spec else spec


    class Broken(TaskProcessor):
        api_version = "md-test/broken-v1"

        def create(self, task, ctx):
            raise RuntimeError(ctx.spec["message"])


    @opus.hookimpl
    def opus_register_processors():
        return [Secretive, Broken]
''')


def md(workdir: Path, command: str, *args: str) -> tuple[int, str]:
    result = invoke(
        workdir, "-p", "md_procs", command, "-f", "t.yaml", "--state", state_url(workdir),
        "-o", "markdown", *args,
    )  # fmt: skip
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stdout


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "md_procs.py").write_text(SECRET_PROCS)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def secret(name: str, **spec: object) -> dict:
    return task("md-test/secret-v1", name, spec)


def test_plan_markdown_lists_changes_with_masked_diffs(workdir: Path) -> None:
    write_manifest(
        workdir / "t.yaml",
        secret("db", size=1, db_password="hunter2", token="tok-1"),
        secret("web", replicas=2),
    )
    code, out = md(workdir, "plan")
    assert code == 3
    assert out.startswith("### opus plan · context <code>default</code> · changes\n")
    assert "**Plan: 2 to create, 0 to update, 0 to delete.**" in out
    assert "| + | <code>db</code> | create |  |" in out
    assert "hunter2" not in out and "tok-1" not in out
    assert '+ db_password = "***"' in out and '+ token = "***"' in out
    assert invoke(workdir, "-p", "md_procs", "apply", "-f", "t.yaml", "--state",
                  state_url(workdir)).returncode == 0  # fmt: skip
    write_manifest(
        workdir / "t.yaml",
        secret("db", size=2, db_password="hunter3", token="tok-2", note="```evil``` | x"),
        secret("web", replicas=2),
    )
    code, out = md(workdir, "plan")
    assert code == 3
    assert "**Plan: 0 to create, 1 to update, 0 to delete.**" in out
    assert "| ~ | <code>db</code> | update | 3 changes |" in out
    assert "hunter" not in out and "tok-2" not in out
    block = out.split("<details><summary>~ update <code>db</code></summary>")[1]
    fence = re.search(r"^(`{4,})diff$", block, re.M)
    assert fence, block  # longer than the ``` inside the value
    body = block.split(fence.group(0))[1].split(fence.group(1))[0]
    assert body.strip().splitlines() == [
        '- db_password = "***"',  # changed, but shown masked
        '+ db_password = "***"',
        '+ note = "```evil``` | x"',
        "- size = 1",
        "+ size = 2",
    ]  # token: the processor's redact() shows no change at all
    assert "web" not in out.split("</details>")[0].split("|:-:|")[1]  # unchanged: not listed


def test_plan_markdown_without_changes(workdir: Path) -> None:
    write_manifest(workdir / "t.yaml", secret("web", replicas=2))
    assert invoke(workdir, "-p", "md_procs", "apply", "-f", "t.yaml", "--state",
                  state_url(workdir)).returncode == 0  # fmt: skip
    code, out = md(workdir, "plan")
    assert code == 0
    assert "· no changes" in out and "**No changes. Everything is up to date.**" in out
    assert "<details>" not in out


def test_drift_markdown_says_what_drifted_and_why(tmp_path: Path) -> None:
    write_manifest(tmp_path / "t.yaml", hello("a"), hello("b"))
    url = state_url(tmp_path)
    assert invoke(tmp_path, "apply", "-f", "t.yaml", "--state", url).returncode == 0
    (tmp_path / "out" / "b.txt").write_text("edited by hand")
    result = invoke(tmp_path, "drift", "-f", "t.yaml", "--state", url, "-o", "markdown")
    assert result.returncode == 3
    rows = [line for line in result.stdout.splitlines() if line.startswith("| <code>")]
    assert rows[0] == "| <code>a</code> | in sync |  |"
    assert rows[1].startswith("| <code>b</code> | **drifted** | resource changed")
    assert "<sub>1 drifted, 1 in sync in " in result.stdout


def test_apply_markdown_keeps_errors_inside_code_blocks(workdir: Path) -> None:
    evil = "bad </details><script>alert(1)</script> | `tick`\nsecond line"
    write_manifest(
        workdir / "t.yaml",
        secret("ok", x=1),
        task("md-test/broken-v1", "broken", {"message": evil}),
    )
    code, out = md(workdir, "apply", "--keep-going")
    assert code == 1
    assert "### opus apply · context <code>default</code> · failed" in out
    assert "| <code>ok</code> | create | created |" in out
    assert "| <code>broken</code> | create | **failed** |" in out
    details = out.split("<details><summary>failed: <code>broken</code></summary>")[1]
    lines = details.splitlines()[2:]
    assert lines[0] == "```" and lines[1].startswith("RuntimeError: bad </details><script>")
    assert lines[2] == "second line" and lines[3] == "```" and lines[5] == "</details>"
    assert out.count("</details>") == 2  # the one in the error is inside the fence


def _ci_steps() -> dict[str, dict]:
    text = (REPO / "docs" / "ci.md").read_text()
    block = re.search(r"```yaml\n(.*?)```\n", text, re.S)
    assert block, "docs/ci.md has a yaml block"
    jobs = yaml.safe_load(block.group(1))["jobs"]
    return {f"{job}/{s.get('name', '')}": s for job in jobs for s in jobs[job]["steps"]}


@pytest.mark.skipif(sys.platform == "win32", reason="the CI script is bash")
def test_the_ci_job_of_the_docs_runs_as_written(tmp_path: Path) -> None:
    steps = _ci_steps()
    (tmp_path / "deploy").mkdir()
    write_manifest(tmp_path / "deploy" / "app.yaml", hello("a"), hello("b"))
    summary = tmp_path / "summary.md"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPUS_")}
    env.update(
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        OPUS_STATE=f"sqlite:///{tmp_path}/state.db",
        GITHUB_STEP_SUMMARY=str(summary),
    )

    def step(name: str) -> subprocess.CompletedProcess[str]:
        script = steps[name]["run"]
        return subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip

    planned = step("plan/Plan")
    assert planned.returncode == 0, planned.stderr  # exit 3 (changes) is accepted
    assert "**Plan: 2 to create, 0 to update, 0 to delete.**" in summary.read_text()
    assert (tmp_path / "plan.md").read_text() in summary.read_text()
    assert "<svg" in (tmp_path / "plan-report.html").read_text()
    applied = step("apply/Apply")
    assert applied.returncode == 0, applied.stderr
    assert "| <code>a</code> | create | created |" in summary.read_text()
    assert (tmp_path / "out" / "a.txt").exists() and (tmp_path / "apply-report.html").exists()
    # a broken manifest fails the plan step (exit 2 is not swallowed)
    (tmp_path / "deploy" / "app.yaml").write_text("apiVersion: [\n")
    assert step("plan/Plan").returncode == 2


def test_plan_markdown_shows_replacements_and_why(tmp_path: Path) -> None:
    write_manifest(tmp_path / "t.yaml", hello("a"), hello("b"))
    url = state_url(tmp_path)
    assert invoke(tmp_path, "apply", "-f", "t.yaml", "--state", url).returncode == 0
    write_manifest(
        tmp_path / "t.yaml", {**hello("a"), "spec": {"path": "out/a2.txt", "content": "hi"}}
    )
    result = invoke(tmp_path, "plan", "-f", "t.yaml", "--state", url, "--prune", "-o", "markdown")
    assert result.returncode == 3, result.stderr
    rows = {line.split(" | ")[1]: line for line in result.stdout.splitlines() if "| <code>" in line}
    assert rows["<code>a</code>"].startswith("| -/+ | <code>a</code> | replace |")
    assert "path" in rows["<code>a</code>"]
    assert rows["<code>b</code>"].startswith("| - | <code>b</code> | delete |")
    assert "**Plan: 0 to create, 0 to update, 1 to replace, 1 to delete.**" in result.stdout
    assert "<sub>1 to replace, 1 to delete in " in result.stdout
