"""One self-contained HTML page for a run: counts, a timeline of tasks on worker lanes, the
dependency graph, each failure's error and a table of every task.

Everything is drawn here as inline SVG; the page loads nothing (its Content-Security-Policy
forbids it) and its one small script only filters by task name. Task names and errors are
user data and are escaped wherever they appear.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import math
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from .data import RunReport, TaskSpan, status_word

if TYPE_CHECKING:
    from collections.abc import Iterable

#: Fill colour per status word.
COLOURS = {
    "done": "#2f9e44",
    "unchanged": "#8d99a6",
    "planned": "#3b6fd1",
    "drifted": "#9c36b5",
    "in_sync": "#1c9c8c",
    "unknown": "#c9a227",
    "failed": "#d63a3a",
    "rolled_back": "#e8590c",
    "skipped": "#e0b400",
    "not_run": "#c4c9cf",
}

LANE_H, BAR_H, LEFT, TOP = 22, 16, 90, 24
NODE_W, NODE_H, COL_GAP, ROW_GAP = 170, 20, 70, 6

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0 24px 40px;color:#1d2530;background:#fff}
h1{font-size:20px;margin:20px 0 4px}h2{font-size:16px;margin:28px 0 8px}
.meta{color:#5c6773;margin:0 0 10px}
.counts{display:flex;flex-wrap:wrap;gap:8px;padding:0;margin:0;list-style:none}
.counts li{padding:3px 10px;border-radius:12px;color:#fff;font-weight:600}
.scroll{overflow:auto;max-height:75vh;border:1px solid #dde1e6;border-radius:4px}
svg text{font:11px system-ui,sans-serif;fill:#1d2530}
.lane-bg{fill:#f6f7f9}.lane:nth-child(odd) .lane-bg{fill:#eef0f3}
.tick{stroke:#d5d9de}.bar-label{fill:#fff;pointer-events:none}.bar{stroke:#fff;stroke-width:.5}.bar:hover{stroke:#000;stroke-width:1.5}
.edge{fill:none;stroke:#8d99a6;stroke-opacity:.55}
.node rect{stroke:#fff;rx:3}.node text{fill:#fff}
.dim{opacity:.12}.hit{stroke:#000!important;stroke-width:2!important}
table{border-collapse:collapse;font-size:13px}td,th{padding:2px 10px;text-align:left;
border-bottom:1px solid #eceef1;vertical-align:top}th{background:#f6f7f9;position:sticky;top:0}
pre{white-space:pre-wrap;margin:2px 0 10px;padding:6px 8px;background:#fff5f5;
border-left:3px solid #d63a3a;font-size:12px}
#filter{padding:4px 8px;width:260px;margin:8px 0}
"""

SCRIPT = """
(function(){document.documentElement.setAttribute('data-ready','1');
var f=document.getElementById('filter');if(!f)return;
f.addEventListener('input',function(){var q=f.value.toLowerCase();
document.querySelectorAll('[data-task]').forEach(function(el){
var m=q&&el.getAttribute('data-task').toLowerCase().indexOf(q)>=0;
el.classList.toggle('dim',!!q&&!m);el.classList.toggle('hit',!!m);});});})();
"""


def _attr(value: object) -> str:
    return escape(str(value), quote=True)


def _colour(word: str) -> str:
    return COLOURS.get(word, "#6c757d")


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}s"


def _tip(task: TaskSpan) -> str:
    parts = [task.name, f"{task.action or '-'} {status_word(task).replace('_', ' ')}"]
    if task.ran:
        parts.append(f"{_seconds(task.start)} → {_seconds(task.end)}")
    if task.error:
        parts.append(task.error.strip().splitlines()[0][:300] if task.error.strip() else "")
    return " · ".join(parts)


def _ticks(duration: float) -> list[float]:
    if duration <= 0:
        return [0.0]
    raw = duration / 8
    step = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= step * factor:
            step *= factor
            break
    return [i * step for i in range(int(duration / step) + 1)]


def timeline_svg(report: RunReport) -> str:
    """The Gantt chart: one ``g.lane`` per worker lane, one ``rect.bar`` per task that ran."""
    lanes: dict[int, list[TaskSpan]] = {}
    for task in report.tasks:
        if task.lane is not None:
            lanes.setdefault(task.lane, []).append(task)
    if not lanes:
        return '<p class="meta">No task ran (nothing to draw).</p>'
    busiest = max(len(v) for v in lanes.values())
    width = max(900, min(24000, busiest * 6))
    duration = max(report.duration_s, max(t.end or 0.0 for t in report.tasks), 1e-6)
    scale = width / duration
    height = TOP + LANE_H * len(lanes) + 6
    out = [
        f'<svg id="gantt" width="{LEFT + width + 20}" height="{height}" '
        f'role="img" aria-label="timeline of {len(report.tasks)} tasks">'
    ]
    for tick in _ticks(duration):
        x = LEFT + tick * scale
        out.append(
            f'<line class="tick" x1="{x:.1f}" y1="{TOP - 6}" x2="{x:.1f}" y2="{height}"/>'
            f'<text x="{x + 2:.1f}" y="{TOP - 10}">{tick:g}s</text>'
        )
    for lane in sorted(lanes):
        y = TOP + lane * LANE_H
        out.append(
            f'<g class="lane" data-lane="{lane}">'
            f'<rect class="lane-bg" x="0" y="{y}" width="{LEFT + width + 20}" height="{LANE_H}"/>'
            f'<text x="6" y="{y + 15}">worker {lane + 1}</text>'
        )
        for task in lanes[lane]:
            word = status_word(task)
            x = LEFT + (task.start or 0.0) * scale
            w = max(2.0, ((task.end or 0.0) - (task.start or 0.0)) * scale)
            out.append(
                f'<rect class="bar s-{_attr(word)}" data-task="{_attr(task.name)}" '
                f'data-status="{_attr(word)}" x="{x:.1f}" y="{y + 3}" width="{w:.1f}" '
                f'height="{BAR_H}" fill="{_colour(word)}">'
                f"<title>{escape(_tip(task))}</title></rect>"
            )
            fits = int((w - 8) / 6.5)
            if fits >= 4:  # a label where it fits (the tooltip always has the full name)
                label = task.name if len(task.name) <= fits else task.name[: fits - 1] + "…"
                out.append(
                    f'<text class="bar-label" x="{x + 4:.1f}" y="{y + 15}">{escape(label)}</text>'
                )
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)


def _levels(tasks: list[TaskSpan]) -> dict[str, int]:
    """Column of each task: one more than its deepest dependency (run order is topological)."""
    level: dict[str, int] = {}
    for task in tasks:
        level[task.name] = 1 + max((level.get(d, -1) for d in task.dependencies), default=-1)
    return level


def graph_svg(report: RunReport) -> str:
    """The dependency graph: ``g.node`` boxes in columns by depth, ``path.edge`` arrows."""
    if not report.tasks:
        return '<p class="meta">No tasks.</p>'
    level = _levels(report.tasks)
    columns: dict[int, list[TaskSpan]] = {}
    for task in report.tasks:
        columns.setdefault(level[task.name], []).append(task)
    where: dict[str, tuple[float, float]] = {}
    for col, members in columns.items():
        for row, task in enumerate(members):
            where[task.name] = (10 + col * (NODE_W + COL_GAP), 10 + row * (NODE_H + ROW_GAP))
    width = 20 + len(columns) * (NODE_W + COL_GAP)
    height = 20 + max(len(m) for m in columns.values()) * (NODE_H + ROW_GAP)
    edges = sum(len(t.dependencies) for t in report.tasks)
    out = [
        f'<svg id="deps" width="{width}" height="{height}" role="img" '
        f'aria-label="{len(report.tasks)} tasks, {edges} dependencies">'
        '<defs><marker id="arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="6" '
        'markerHeight="6" orient="auto"><path d="M0,0L8,4L0,8z" fill="#8d99a6"/></marker></defs>'
    ]
    for task in report.tasks:
        tx, ty = where[task.name]
        for dep in task.dependencies:
            if dep not in where:
                continue
            sx, sy = where[dep]
            x1, y1, x2, y2 = sx + NODE_W, sy + NODE_H / 2, tx, ty + NODE_H / 2
            mid = (x1 + x2) / 2
            out.append(
                f'<path class="edge" data-from="{_attr(dep)}" data-to="{_attr(task.name)}" '
                f'd="M{x1:.0f},{y1:.0f}C{mid:.0f},{y1:.0f} {mid:.0f},{y2:.0f} {x2:.0f},{y2:.0f}" '
                'marker-end="url(#arrow)"/>'
            )
    for task in report.tasks:
        x, y = where[task.name]
        word = status_word(task)
        label = task.name if len(task.name) <= 26 else task.name[:25] + "…"
        out.append(
            f'<g class="node" data-task="{_attr(task.name)}" data-status="{_attr(word)}">'
            f"<title>{escape(_tip(task))}</title>"
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{NODE_W}" height="{NODE_H}" '
            f'fill="{_colour(word)}"/><text x="{x + 6:.0f}" y="{y + 14:.0f}">{escape(label)}</text>'
            "</g>"
        )
    out.append("</svg>")
    return "".join(out)


def _counts(report: RunReport) -> str:
    items = sorted(report.counts().items(), key=lambda kv: list(COLOURS).index(kv[0])
                   if kv[0] in COLOURS else len(COLOURS))  # fmt: skip
    return "".join(
        f'<li class="count s-{_attr(w)}" style="background:{_colour(w)}">'
        f"{n} {escape(w.replace('_', ' '))}</li>"
        for w, n in items
    )


def _failures(tasks: Iterable[TaskSpan]) -> str:
    rows = [
        f'<li data-task="{_attr(t.name)}"><b>{escape(t.name)}</b> '
        f"{escape(status_word(t).replace('_', ' '))}"
        f"{' (' + escape(t.action) + ')' if t.action else ''}"
        f"<pre>{escape(t.error or '')}</pre></li>"
        for t in tasks
        if t.status in ("failed", "rolled_back", "skipped") or (t.error and t.status != "done")
    ]
    if not rows:
        return '<p class="meta" id="no-failures">No failures.</p>'
    return f'<ol id="failure-list">{"".join(rows)}</ol>'


def _table(tasks: Iterable[TaskSpan]) -> str:
    rows = []
    for t in tasks:
        took = None if not t.ran else (t.end or 0.0) - (t.start or 0.0)
        rows.append(
            f'<tr data-task="{_attr(t.name)}"><td>{escape(t.name)}</td>'
            f"<td>{escape(t.action or '')}</td><td>{escape(status_word(t).replace('_', ' '))}</td>"
            f"<td>{_seconds(t.start)}</td><td>{_seconds(took)}</td>"
            f"<td>{'' if t.lane is None else t.lane + 1}</td>"
            f"<td>{escape(', '.join(t.dependencies))}</td></tr>"
        )
    head = (
        "<tr><th>task</th><th>action</th><th>status</th><th>start</th><th>took</th>"
        "<th>worker</th><th>depends on</th></tr>"
    )
    return f'<table id="task-table">{head}{"".join(rows)}</table>'


def render_html(report: RunReport) -> str:
    """The whole page as one string."""
    script_hash = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
    csp = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        f"script-src 'sha256-{script_hash}'"
    )
    started = dt.datetime.fromtimestamp(report.started_at).isoformat(sep=" ", timespec="seconds")
    title = f"opus {report.command} in context {report.context} (run {report.run_id})"
    return "".join(
        [
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{_attr(csp)}">',
            '<meta name="viewport" content="width=device-width,initial-scale=1">',
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
            f"<h1>{escape(title)}</h1>",
            f'<p class="meta" id="run-meta">{escape(report.status)} · started {started} · took '
            f"{report.duration_s:.2f}s · {len(report.tasks)} tasks on {report.lanes} worker "
            "lane(s)</p>",
            f'<ul class="counts" id="counts">{_counts(report)}</ul>',
            '<input id="filter" type="search" placeholder="highlight tasks by name">',
            "<h2>Timeline</h2>",
            f'<div class="scroll">{timeline_svg(report)}</div>',
            "<h2>Failures</h2>",
            _failures(report.tasks),
            "<h2>Dependencies</h2>",
            f'<div class="scroll">{graph_svg(report)}</div>',
            "<h2>Tasks</h2>",
            f'<div class="scroll">{_table(report.tasks)}</div>',
            f"<script>{SCRIPT}</script></body></html>\n",
        ]
    )


def write_html(report: RunReport, path: str | Path) -> Path:
    """Write the page to ``path`` (through a temporary file, so a reader never sees half)."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(render_html(report), encoding="utf-8")
    tmp.replace(target)
    return target
