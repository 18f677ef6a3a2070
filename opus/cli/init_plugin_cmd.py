"""``opus init-plugin NAME``: write a ready plugin package."""

from __future__ import annotations

from pathlib import Path

import click

from .errors import handle_errors


@click.command("init-plugin")
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Where to write opus-NAME/.",
)
@handle_errors
def init_plugin(name: str, directory: Path) -> None:
    """Write opus-NAME/: a plugin package with a NAME/v1 processor, its spec schema, tests
    built on opus.testing.ProcessorContract, and a README. Then: pip install -e opus-NAME."""
    from ..scaffold import init_plugin as write

    root = write(name, directory)
    click.echo(f"wrote {root}/")
    click.echo(f"next: pip install -e '{root}[test]' && python -m pytest {root}")
