"""``--report FILE`` and ``runs show --html FILE``: where the HTML run report goes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..report import RunReport


def check_report_path(path: str | None, option: str) -> Path | None:
    """Refuse, before anything runs, a report path whose directory does not exist."""
    if path is None:
        return None
    target = Path(path)
    if target.is_dir():
        raise ConfigError(f"{option} {path}: is a directory; give a file name")
    if not target.parent.is_dir():
        raise ConfigError(f"{option} {path}: directory {str(target.parent)!r} does not exist")
    return target


def write_report(report: RunReport, target: Path, option: str) -> None:
    """Write the page; say where on stderr."""
    from ..report import write_html

    try:
        write_html(report, target)
    except OSError as exc:
        raise ConfigError(f"{option} {target}: cannot write the report: {exc}") from None
    click.echo(f"run report: {target}", err=True)
