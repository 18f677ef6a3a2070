"""A run's summary on a plain pipe is drawn without importing rich, character for character
as rich draws it; anything rich would draw differently still goes through rich."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from helpers_cli import cli_env, hello, write_manifest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from opus.cli.output import console_for, make_table
from opus.cli.plaintable import plain_table


class Pipe(io.StringIO):
    """A stream that is not a terminal, as a redirected stdout is."""

    encoding = "utf-8"

    def isatty(self) -> bool:
        return False


def drawn_by_rich(title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    out = Pipe()
    console = console_for(out)
    console.print(title, markup=False, highlight=False)
    console.print(make_table(columns, rows))
    return out.getvalue()


CELL = st.one_of(
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=12),  # printable ASCII
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12),
)


@settings(max_examples=200, deadline=None)
@given(
    title=CELL,
    columns=st.lists(CELL.filter(bool), min_size=1, max_size=4).map(tuple),
    data=st.data(),
)
def test_plain_tables_are_what_rich_draws(
    title: str, columns: tuple[str, ...], data: st.DataObject
) -> None:
    rows = data.draw(st.lists(st.tuples(*[CELL for _ in columns]), max_size=4), label="rows")
    plain = plain_table(title, columns, rows, Pipe())
    event("plain" if plain is not None else "rich")
    if plain is not None:
        assert plain == drawn_by_rich(title, columns, rows)


def test_plain_tables_are_used_for_ordinary_text_only() -> None:
    columns = ("task", "error")
    assert plain_table("t", columns, [("a", "boom: exit 1 (after 2s)")], Pipe()) is not None
    for cell in ["[red]x[/red]", ":smile:", "naïve", "tab\there", "wide 漢字"]:
        assert plain_table("t", columns, [("a", cell)], Pipe()) is None, cell
    latin = Pipe()
    latin.encoding = "latin-1"  # rich draws ASCII boxes there
    assert plain_table("t", columns, [("a", "b")], latin) is None


def test_apply_to_a_pipe_does_not_import_rich(tmp_path: Path) -> None:
    write_manifest(tmp_path / "t.yaml", [hello("a")])
    state = f"sqlite:///{tmp_path / 'state.db'}"
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "opus", "apply", "-f", "t.yaml"]
        + ["--state", state],
        cwd=tmp_path,
        env=cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1].startswith("┏━━━━━━┳━━━━━━━━┳")
    assert "│ a    │ create │ created │" in result.stdout
    imported = [line.split("|")[-1].strip() for line in result.stderr.splitlines()]
    assert "opus.cli.plaintable" in imported
    assert not [name for name in imported if name.split(".")[0] == "rich"]
