"""The HTML run report in a real browser: headless Chromium renders it, the test reads the
rendered DOM (``--dump-dom``) and keeps a screenshot as an artifact.

Chromium comes from ``scripts/chromium-for-tests.sh``, which installs Debian's ``chromium``
when it is missing and the tests run as root; otherwise these tests skip and say why.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers_cli import hello, invoke, state_url
from helpers_cli import write_manifest as write_docs
from test_cli_report import EVIL, big_report, run_with_report

from opus.report import RunReport, TaskSpan, assign_lanes, render_html

REPO = Path(__file__).resolve().parents[2]
#: Where the example screenshot linked from the README lives.
DOCS_SHOT = REPO / "docs" / "img" / "run-report.png"


def write_manifest(path: Path, *docs: dict) -> Path:
    return write_docs(path, docs)


@pytest.fixture(scope="session")
def chromium() -> str:
    try:
        found = subprocess.run(
            ["bash", str(REPO / "scripts" / "chromium-for-tests.sh")],
            capture_output=True,
            text=True,
            timeout=900,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"no Chromium: scripts/chromium-for-tests.sh failed: {exc}")
    if not found:
        pytest.skip("no Chromium installed and not root (cannot apt-get install chromium)")
    return found.splitlines()[-1]


@pytest.fixture
def profile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("chromium-profile")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def browse(chromium: str, profile: Path, page: Path, *mode: str) -> str:
    argv = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={profile}", "--window-size=1400,1000", *mode,
        page.as_uri(),
    ]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_the_browser_renders_lanes_bars_and_no_injected_markup(
    tmp_path: Path, chromium: str, profile: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    code, err = run_with_report(tmp_path, "--report", "report.html")
    assert code == 1, err
    dom = browse(chromium, profile, tmp_path / "report.html", "--dump-dom")
    # the page's own script ran (allowed by the CSP hash) ...
    assert 'data-ready="1"' in dom
    # ... and nothing from the error message did
    assert "<title>opus apply in context default" in dom and "pwned" not in dom.split("</title>")[0]
    assert "<img" not in dom and "&lt;script&gt;document.title" in dom
    lanes = re.findall(r'<g class="lane" data-lane="(\d+)">', dom)
    assert sorted(lanes) == ["0", "1"]
    drawn = re.findall(r'<rect class="bar s-(\w+)" data-task="([^"]+)"', dom)
    assert sorted(drawn) == [("done", "app"), ("done", "base"), ("done", "side"), ("failed", "bad")]
    assert len(re.findall(r'<g class="node"', dom)) == 5
    shot = tmp_path / "run-report.png"
    browse(chromium, profile, tmp_path / "report.html", f"--screenshot={shot}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    print(f"screenshot kept at {shot}")  # an artifact of this test run (pytest keeps tmp dirs)


def test_the_browser_renders_a_report_of_5000_tasks(
    tmp_path: Path, chromium: str, profile: Path
) -> None:
    page = tmp_path / "big.html"
    page.write_text(big_report(5000))
    dom = browse(chromium, profile, page, "--dump-dom")
    assert len(re.findall(r'<rect class="bar ', dom)) == 5000
    assert len(re.findall(r'<g class="node"', dom)) == 5000
    shot = tmp_path / "big.png"
    browse(chromium, profile, page, f"--screenshot={shot}")
    assert shot.stat().st_size > 20_000


def test_names_are_escaped_everywhere(tmp_path: Path, chromium: str, profile: Path) -> None:
    evil = '<svg onload="document.body.dataset.pwned=1">x'
    spans = assign_lanes(
        [
            TaskSpan("a", "done", "create", 0.0, 0.5),
            TaskSpan(evil, "failed", "create", 0.1, 0.3, error=EVIL, dependencies=("a",)),
        ]
    )
    report = RunReport("r1", "apply", "apply", "dev", "failed", 0.0, 0.5, spans)
    page = tmp_path / "names.html"
    page.write_text(render_html(report))
    assert evil not in page.read_text()
    dom = browse(chromium, profile, page, "--dump-dom")
    assert "data-pwned" not in dom and 'data-ready="1"' in dom
    assert len(re.findall(r'<rect class="bar ', dom)) == 2


def test_the_readme_screenshot_exists_and_is_linked() -> None:
    assert DOCS_SHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "docs/img/run-report.png" in (REPO / "README.md").read_text()


def test_lanes_never_overlap_and_are_as_few_as_the_busiest_moment() -> None:
    spans = assign_lanes(
        [
            TaskSpan("a", "done", start=0.0, end=1.0),
            TaskSpan("b", "done", start=0.2, end=0.4),
            TaskSpan("c", "done", start=0.4, end=0.9),  # b's lane is free again at 0.4
            TaskSpan("d", "done", start=0.5, end=2.0),
            TaskSpan("e", "skipped"),
        ]
    )
    lane = {s.name: s.lane for s in spans}
    assert lane == {"a": 0, "b": 1, "c": 1, "d": 2, "e": None}
    for x in spans:
        for y in spans:
            if x is not y and x.lane is not None and x.lane == y.lane:
                assert (x.end or 0) <= (y.start or 0) or (y.end or 0) <= (x.start or 0)


def test_runs_show_html_of_a_run_without_a_kept_report(tmp_path: Path) -> None:
    """Runs recorded before reports were kept: drawn from their history entries."""
    from opus.state.sqlite import SQLiteStateBackend

    write_manifest(tmp_path / "t.yaml", hello("a"), hello("b"))
    url = state_url(tmp_path)
    assert invoke(tmp_path, "apply", "-f", "t.yaml", "--state", url).returncode == 0
    backend = SQLiteStateBackend(url)
    run_id = backend.list_runs()[0].run_id
    backend._execute(lambda cur: cur.execute("DELETE FROM run_reports"), write=True)
    backend.close()
    shown = invoke(tmp_path, "runs", "show", run_id, "--state", url, "--html", "old.html")
    assert shown.returncode == 0, shown.stderr
    page = (tmp_path / "old.html").read_text()
    assert len(re.findall(r'<rect class="bar ', page)) == 2
