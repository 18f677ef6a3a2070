"""Run reports: a finished run as data (:mod:`.data`) and as one HTML page (:mod:`.html`)."""

from __future__ import annotations

from .data import RunReport, TaskSpan, assign_lanes, from_result, from_state, report_data
from .html import render_html, write_html

__all__ = [
    "RunReport",
    "TaskSpan",
    "assign_lanes",
    "from_result",
    "from_state",
    "render_html",
    "report_data",
    "write_html",
]
