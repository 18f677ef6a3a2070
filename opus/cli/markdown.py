"""``--output markdown``: a run as a compact Markdown summary for a pull-request comment or
``$GITHUB_STEP_SUMMARY``.

Plans show each change with its diff, drift runs what drifted and why, other runs what was
done and each error. Values come from the diffs opus keeps, which the processor has already
redacted; values under keys that look like secrets (``password``, ``token``, ...) are
masked here as well. Errors and values go into fenced blocks, so nothing in them is read as
Markdown or HTML.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .plan_view import plan_reason, plan_total
from .words import count_line, error_excerpt, outcome_word

if TYPE_CHECKING:
    from ..model import RunResult, TaskOutcome

MASK = "***"
#: A key whose last path segment matches this holds a secret.
SENSITIVE_KEY = re.compile(
    r"(passw(or)?d|secret|token|api[-_]?key|private[-_]?key|credential|auth)", re.IGNORECASE
)
_SIGN = {"create": "+", "update": "~", "delete": "-", "replace": "-/+"}


def masked(path: str, value: Any) -> Any:
    """``***`` for a value under a sensitive-looking key, else the value."""
    return MASK if SENSITIVE_KEY.search(path.rsplit(".", 1)[-1]) else value


def _value(path: str, value: Any) -> str:
    return json.dumps(masked(path, value), default=str, ensure_ascii=False)


def diff_block(diff: Mapping[str, Any] | None) -> list[str]:
    """A spec diff as ``diff`` lines: ``+ path = new``, ``- path = old``."""
    diff = diff or {}
    lines: list[tuple[str, int, str]] = []
    for path, value in (diff.get("added") or {}).items():
        lines.append((path, 1, f"+ {path} = {_value(path, value)}"))
    for path, value in (diff.get("removed") or {}).items():
        lines.append((path, 0, f"- {path} = {_value(path, value)}"))
    for path, pair in (diff.get("changed") or {}).items():
        old, new = pair
        lines.append((path, 0, f"- {path} = {_value(path, old)}"))
        lines.append((path, 1, f"+ {path} = {_value(path, new)}"))
    return [text for _, _, text in sorted(lines)]


def fenced(lines: Sequence[str], lang: str = "") -> list[str]:
    """A code block whose fence is longer than any run of backticks inside it."""
    longest = max((len(run) for line in lines for run in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{lang}", *lines, fence]


def cell(text: str) -> str:
    """Text for a table cell: one line, pipes and markup neutralised."""
    text = " ".join(text.split())
    return re.sub(r"([\\|`*_<>\[\]])", r"\\\1", text)


def code(name: str) -> str:
    return f"<code>{cell(name)}</code>"


def _details(summary: str, body: list[str]) -> list[str]:
    return ["<details><summary>" + summary + "</summary>", "", *body, "", "</details>", ""]


def _changes(diff: Mapping[str, Any] | None) -> int:
    diff = diff or {}
    return sum(len(diff.get(k) or {}) for k in ("added", "removed", "changed"))


def _header(result: RunResult, status: str) -> list[str]:
    return [f"### opus {cell(result.command)} · context {code(result.context)} · {status}", ""]


def _problems(result: RunResult) -> list[str]:
    out: list[str] = []
    for name, o in result.tasks.items():
        if o.status in ("failed", "rolled_back", "skipped") and o.error:
            word = o.status.replace("_", " ")
            out += _details(f"{word}: {code(name)}", fenced(o.error.strip().splitlines()))
    return out


def _plan(result: RunResult, gaps: Mapping[str, str], left_out: Sequence[str]) -> list[str]:
    changes = {n: o for n, o in result.tasks.items() if o.status == "planned"}
    out = _header(result, "changes" if result.changed else "no changes")
    out += [f"**{plan_total(result, gaps)}**", ""]
    if changes:
        out += ["| | task | action | |", "|:-:|---|---|---|"]
        for name, o in changes.items():
            action = o.action or "?"
            if name in gaps:
                out.append(f"| ? | {code(name)} | {cell(action)} | unknown: {cell(gaps[name])} |")
                continue
            n = _changes(o.diff)
            note = f"{n} change{'s' if n != 1 else ''}" if action == "update" else ""
            reason = plan_reason(o)
            note = cell(f"{note} ({reason})" if note and reason else note or reason or "")
            out.append(f"| {_SIGN.get(action, '?')} | {code(name)} | {cell(action)} | {note} |")
        out.append("")
        for name, o in changes.items():
            lines = diff_block(o.diff)
            if lines and name not in gaps:
                sign = _SIGN.get(o.action or "", "?")
                out += _details(
                    f"{sign} {cell(o.action or '?')} {code(name)}", fenced(lines, "diff")
                )
    if left_out:
        out += [f"Left out by --target/--exclude: {', '.join(code(n) for n in left_out)}", ""]
    return out


def _drift_note(o: TaskOutcome) -> str:
    details = o.details or {}
    why = []
    if o.spec_drift:
        why.append("spec changed since apply")
    if o.resource_drift:
        why.append("resource changed")
    if details.get("message"):
        why.append(error_excerpt(str(details["message"]), 200))
    return cell("; ".join(why))


def _drift(result: RunResult) -> list[str]:
    out = _header(result, "drifted" if result.drifted else "in sync")
    out += ["| task | result | why |", "|---|---|---|"]
    for name, o in result.tasks.items():
        word = outcome_word(o)
        out.append(f"| {code(name)} | {'**' + word + '**' if o.drifted else word} | "
                   f"{_drift_note(o) if o.drifted else ''} |")  # fmt: skip
    out.append("")
    for name, o in result.tasks.items():
        spec_diff = (o.details or {}).get("spec_diff")
        if o.drifted and spec_diff:
            out += _details(f"spec drift of {code(name)}", fenced(diff_block(spec_diff), "diff"))
    return out


def _run(result: RunResult, gaps: Mapping[str, str]) -> list[str]:
    status = "interrupted" if result.interrupted else ("ok" if result.ok else "failed")
    out = _header(result, status)
    out += ["| task | action | status | duration |", "|---|---|---|---|"]
    for name, o in result.tasks.items():
        took = f"{o.duration_s:.2f}s" if o.duration_s is not None else ""
        word = outcome_word(o, gaps.get(name))
        shown = f"**{word}**" if o.status in ("failed", "rolled_back") else word
        out.append(f"| {code(name)} | {cell(o.action or '')} | {shown} | {took} |")
    out.append("")
    return out


def render_markdown(
    result: RunResult, gaps: Mapping[str, str], left_out: Sequence[str] = ()
) -> str:
    """The whole summary, ending with the count line and the run id."""
    if result.action == "plan":
        lines = _plan(result, gaps, left_out)
    elif result.action == "detect_drift":
        lines = _drift(result)
    else:
        lines = _run(result, gaps)
    lines += _problems(result)
    lines.append(f"<sub>{cell(count_line(result, gaps))} · run {code(result.run_id)}</sub>")
    return "\n".join(lines) + "\n"
