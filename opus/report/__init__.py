"""Run reports: a finished run as data (:mod:`.data`) and as one HTML page (:mod:`.html`).

Names load on first use: a run that only keeps its report (:mod:`.document`) imports
neither the report model nor the HTML writer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazyload import lazy_exports

if TYPE_CHECKING:
    from .data import RunReport, TaskSpan, assign_lanes, from_result, from_state
    from .document import report_data
    from .html import render_html, write_html

_LAZY = {
    "RunReport": ".data",
    "TaskSpan": ".data",
    "assign_lanes": ".data",
    "from_result": ".data",
    "from_state": ".data",
    "report_data": ".document",
    "render_html": ".html",
    "write_html": ".html",
}


__getattr__ = lazy_exports(__name__, _LAZY)


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
