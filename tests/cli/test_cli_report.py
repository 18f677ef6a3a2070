"""HTML run reports: ``apply --report FILE`` and ``runs show RUN_ID --html FILE``."""

from __future__ import annotations

import html
import json
import re
import time
from pathlib import Path

import pytest
from helpers_cli import invoke, state_url, task, write_procs
from helpers_cli import write_manifest as write_docs

from opus import Engine, Plugins, TaskProcessor
from opus.report import from_result, render_html

#: A failure message that would run script if it reached the page unescaped.
EVIL = "<script>document.title='pwned'</script><img src=x onerror=alert(1)> & \"q\""


def write_manifest(path: Path, *docs: dict) -> Path:
    return write_docs(path, docs)


def manifest(workdir: Path) -> Path:
    write_procs(workdir)
    return write_manifest(
        workdir / "t.yaml",
        task("cli-test/slow-v1", "base", {"seconds": 0.3}),
        task("cli-test/slow-v1", "side", {"seconds": 0.2}),
        task("cli-test/slow-v1", "app", {"seconds": 0.2}, dependencies=[{"tasks": ["base"]}]),
        task("cli-test/fail-v1", "bad", {"message": EVIL}, dependencies=[{"tasks": ["side"]}]),
        task("cli-test/slow-v1", "later", {"seconds": 0.1}, dependencies=[{"tasks": ["bad"]}]),
    )  # fmt: skip


def run_with_report(workdir: Path, *extra: str) -> tuple[int, str]:
    manifest(workdir)
    result = invoke(
        workdir, "-p", "opus_cli_testprocs", "apply", "-f", "t.yaml", "--state",
        state_url(workdir), "--keep-going", "--parallelism", "2", *extra,
    )  # fmt: skip
    return result.returncode, result.stderr


@pytest.fixture
def procs_importable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def bars(page: str) -> dict[str, dict[str, str]]:
    """``{task: attributes}`` of every timeline bar."""
    out = {}
    for attrs in re.findall(r'<rect class="bar [^"]*"([^>]*)>', page):
        fields = dict(re.findall(r'([\w-]+)="([^"]*)"', attrs))
        out[fields["data-task"]] = fields
    return out


def test_apply_report_draws_lanes_bars_graph_and_escaped_errors(procs_importable: Path) -> None:
    code, err = run_with_report(procs_importable, "--report", "report.html")
    assert code == 1, err
    assert "run report: report.html" in err
    page = (procs_importable / "report.html").read_text()
    drawn = bars(page)
    # every task that ran has a bar; the skipped one does not
    assert set(drawn) == {"base", "side", "app", "bad"}
    assert drawn["bad"]["data-status"] == "failed"
    assert drawn["base"]["data-status"] == "done"
    # parallelism 2: two lanes, and tasks overlapping in time are on different lanes
    assert len(re.findall(r'<g class="lane" data-lane="\d+">', page)) == 2
    # the dependency graph has every task and edge
    assert len(re.findall(r'<g class="node"', page)) == 5
    edges = set(re.findall(r'<path class="edge" data-from="([^"]*)" data-to="([^"]*)"', page))
    assert edges == {("base", "app"), ("side", "bad"), ("bad", "later")}
    assert re.search(r'<li class="count s-done"[^>]*>3 done</li>', page)
    assert re.search(r'<li class="count s-failed"[^>]*>1 failed</li>', page)
    assert re.search(r'<li class="count s-skipped"[^>]*>1 skipped</li>', page)
    # user data never becomes markup
    assert "<script>document" not in page and "<img" not in page
    assert "&lt;script&gt;document.title=&#x27;pwned&#x27;&lt;/script&gt;" in page
    assert page.count("<script") == 1  # only the page's own filter script
    # self-contained: nothing is loaded from anywhere
    assert not re.search(r"(src|href)=\"(?!#)", page) and "url(http" not in page
    assert "default-src 'none'" in html.unescape(page)


def test_runs_show_html_draws_a_recorded_run(procs_importable: Path) -> None:
    code, _ = run_with_report(procs_importable)
    assert code == 1
    url = state_url(procs_importable)
    runs = json.loads(invoke(procs_importable, "runs", "list", "--state", url, "-o", "json").stdout)
    run_id = runs[0]["run_id"]
    shown = invoke(
        procs_importable, "runs", "show", run_id[:17], "--state", url, "--html", "past.html"
    )
    assert shown.returncode == 1 and "run report: past.html" in shown.stderr  # a failed run exits 1
    page = (procs_importable / "past.html").read_text()
    assert run_id in page
    assert set(bars(page)) == {"base", "side", "app", "bad"}
    assert len(re.findall(r'<path class="edge"', page)) == 3
    assert "<script>document" not in page and "&lt;script&gt;document" in page
    # the recorded timings: app started after base ended
    drawn = bars(page)
    base_end = float(drawn["base"]["x"]) + float(drawn["base"]["width"])
    assert float(drawn["app"]["x"]) >= base_end - 1.0


def test_a_drift_run_report_counts_drifted_and_in_sync(tmp_path: Path) -> None:
    from helpers_cli import hello

    write_manifest(tmp_path / "t.yaml", hello("a"), hello("b"))
    url = state_url(tmp_path)
    assert invoke(tmp_path, "apply", "-f", "t.yaml", "--state", url).returncode == 0
    (tmp_path / "out" / "b.txt").write_text("changed by hand")
    drift = invoke(tmp_path, "drift", "-f", "t.yaml", "--state", url, "--report", "drift.html")
    assert drift.returncode == 3, drift.stderr
    page = (tmp_path / "drift.html").read_text()
    assert ">1 drifted</li>" in page and ">1 in sync</li>" in page
    assert bars(page)["b"]["data-status"] == "drifted"


def test_bad_report_paths_are_refused_before_anything_runs(procs_importable: Path) -> None:
    code, err = run_with_report(procs_importable, "--report", "no/such/dir/r.html")
    assert (
        code == 2 and "--report no/such/dir/r.html: directory 'no/such/dir' does not exist" in err
    )
    assert not (procs_importable / "state.db").exists()
    url = state_url(procs_importable)
    shown = invoke(procs_importable, "runs", "show", "x", "--state", url, "--html", ".")
    assert shown.returncode == 2 and "is a directory" in shown.stderr


class Noop(TaskProcessor):
    api_version = "noop/v1"

    def create(self, task, ctx):  # type: ignore[no-untyped-def]
        return {"i": ctx.spec["i"]}


def many_tasks(count: int) -> list[dict]:
    out = []
    for i in range(count):
        deps = [f"t{j}" for j in (i // 2, i // 3) if i > 2 and j < i]
        metadata: dict = {"name": f"t{i}"}
        if deps:
            metadata["dependencies"] = [{"tasks": sorted(set(deps))}]
        out.append(
            {"apiVersion": "noop/v1", "kind": "Noop", "metadata": metadata, "spec": {"i": i}}
        )
    return out


def big_report(count: int = 5000) -> str:
    engine = Engine(state="memory://", plugins=Plugins(entry_points=False), parallelism=8)
    engine.register_processor(Noop)
    with engine:
        result = engine.run("apply", many_tasks(count))
        graph = engine.validate("apply", many_tasks(count))
    assert result.ok and len(result.tasks) == count
    started = time.perf_counter()
    page = render_html(from_result(result, graph))
    took = time.perf_counter() - started
    assert took < 10, f"rendering {count} tasks took {took:.1f}s"
    return page


def test_a_report_of_5000_tasks_stays_small_and_quick() -> None:
    page = big_report()
    assert len(page) < 8_000_000, f"{len(page) / 1e6:.1f} MB"
    assert len(bars(page)) == 5000
    lanes = len(re.findall(r'<g class="lane"', page))
    assert 1 <= lanes <= 8  # never more lanes than tasks ran at once


def test_a_report_shows_pruned_orphans(tmp_path: Path) -> None:
    from helpers_cli import hello

    url = state_url(tmp_path)
    write_manifest(tmp_path / "t.yaml", hello("a"), hello("b"))
    assert invoke(tmp_path, "apply", "-f", "t.yaml", "--state", url).returncode == 0
    write_manifest(tmp_path / "t.yaml", hello("a"))
    pruned = invoke(
        tmp_path, "apply", "-f", "t.yaml", "--state", url, "--prune", "--yes",
        "--report", "pruned.html",
    )  # fmt: skip
    assert pruned.returncode == 0, pruned.stderr
    page = (tmp_path / "pruned.html").read_text()
    assert bars(page)["b"]["data-status"] == "done" and "b" in bars(page)
    assert re.search(r"<td>b</td><td>delete</td>", page)
