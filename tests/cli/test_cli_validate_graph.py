"""``opus validate`` lists every problem; ``opus graph`` prints valid text, mermaid and dot."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from helpers_cli import hello, invoke, run_opus, task, write_manifest


def test_validate_ok_touches_no_state(tmp_path: Path) -> None:
    write_manifest(tmp_path / "t.yaml", [hello("a"), hello("b", "${VAR:a:sha256}")])
    result = run_opus(tmp_path, "validate", "-f", "t.yaml")
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout.strip()
        == "ok: 2 task(s) valid for 'apply' in context 'default' (0 out of scope)"
    )
    assert not (tmp_path / ".opus").exists() and not (tmp_path / "out").exists()
    data = json.loads(run_opus(tmp_path, "validate", "-f", "t.yaml", "-o", "json").stdout)
    assert data["ok"] is True and data["tasks"] == ["a", "b"]


def test_validate_reports_every_problem_at_once(tmp_path: Path) -> None:
    write_manifest(
        tmp_path / "t.yaml",
        [
            task("nope/v1", "unknown-api", {"x": "${VAR:undefined}"}),
            hello("b", "${VAR:c:x}", dependencies=[{"tasks": ["ghost"]}]),
            hello("c", "${VAR:b:x}"),
            hello("dup"),
            hello("dup"),
        ],
    )
    (tmp_path / "bad.yaml").write_text("kind: Y\nmetadata: {name: d}\n")
    result = run_opus(tmp_path, "validate", "-f", "t.yaml", "-f", "bad.yaml")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    err = result.stderr
    assert re.match(r"error: \d+ problems found:", err)
    for message in [
        "bad.yaml:1, task 'd', field 'apiVersion': missing 'apiVersion'",
        "duplicate task name 'dup'",
        "depends on unknown task 'ghost'",
        "dependency cycle: ",
        "t.yaml:1, task 'unknown-api', field 'apiVersion': no processor for apiVersion 'nope/v1'",
        "t.yaml:1: task 'unknown-api', spec.x: variable 'undefined' is not defined",
    ]:
        assert message in err, err
    data = json.loads(
        run_opus(tmp_path, "validate", "-f", "t.yaml", "-f", "bad.yaml", "-o", "json").stdout
    )
    assert data["ok"] is False and len(data["problems"]) >= 6


def _scoped(tmp_path: Path) -> None:
    write_manifest(
        tmp_path / "t.yaml",
        [
            hello("net"),
            hello("db", dependencies=[{"tasks": ["net"]}]),
            hello("web", '${VAR:db:path} "quoted"', dependencies=[{"tasks": ["net"]}]),
            hello("prod-only", processingScopes=[{"contexts": ["prod"]}]),
        ],
    )


def test_graph_text_applies_scopes_and_targets(tmp_path: Path) -> None:
    _scoped(tmp_path)
    result = invoke(tmp_path, "graph", "-f", "t.yaml")
    assert result.stdout.splitlines() == [
        "net",
        "db <- net",
        "web <- net, db",
        "# out of scope: prod-only",
    ]
    prod = invoke(tmp_path, "graph", "-f", "t.yaml", "--context", "prod")
    assert "prod-only" in prod.stdout.splitlines()
    target = invoke(tmp_path, "graph", "-f", "t.yaml", "--target", "db")
    assert target.stdout.splitlines()[:2] == ["net", "db <- net"] and "web" not in target.stdout
    excluded = invoke(tmp_path, "graph", "-f", "t.yaml", "--exclude", "db")
    assert excluded.stdout.splitlines()[:1] == ["net"] and "web" not in excluded.stdout


def test_graph_mermaid_shape(tmp_path: Path) -> None:
    _scoped(tmp_path)
    lines = invoke(tmp_path, "graph", "-f", "t.yaml", "--format", "mermaid").stdout.splitlines()
    assert lines[0] == "graph TD"
    nodes = {
        m.group(1): m.group(2)
        for line in lines[1:]
        if (m := re.fullmatch(r'    (n\d+)\["([^"]*)"\]', line))
    }
    edges = [
        m.groups() for line in lines[1:] if (m := re.fullmatch(r"    (n\d+) --> (n\d+)", line))
    ]
    comments = [line for line in lines[1:] if line.strip().startswith("%%")]
    assert len(nodes) + len(edges) + len(comments) == len(lines) - 1  # nothing else
    assert sorted(nodes.values()) == ["db (HelloWorld)", "net (HelloWorld)", "web (HelloWorld)"]
    named = {(nodes[a].split()[0], nodes[b].split()[0]) for a, b in edges}
    assert named == {("net", "db"), ("net", "web"), ("db", "web")}


def test_graph_dot_parses_with_graphviz(tmp_path: Path) -> None:
    graphviz = pytest.importorskip("graphviz")
    _scoped(tmp_path)
    text = invoke(tmp_path, "graph", "-f", "t.yaml", "--format", "dot").stdout
    source = graphviz.Source(text)
    assert source.source.startswith("digraph opus {") and text.rstrip().endswith("}")
    edges = re.findall(r'^\s+"([^"]+)" -> "([^"]+)";$', text, flags=re.M)
    assert set(edges) == {("net", "db"), ("net", "web"), ("db", "web")}
    assert text.count("{") == text.count("}") == 1
    if shutil.which("dot") is None:
        pytest.skip("the Graphviz 'dot' binary is not installed; structure checked only")
    svg = source.pipe(format="svg").decode()
    assert "<svg" in svg and ">web<" in svg
