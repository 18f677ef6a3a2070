"""The shell quoting of referenced values: whatever a value holds, sh reads it back as data."""

from __future__ import annotations

import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opus_shell.quoting import UnsafeReference, context_at, quote_for

TEMPLATES = {
    "plain": "printf '%s' @",
    "double": 'printf "%s" "x@y"',
    "single": "printf '%s' 'x@y'",
    "in_subshell_in_double": 'printf "%s" "$(printf "%s" @)"',
}
EXPECTED_PREFIX = {"plain": "", "double": "x", "single": "x", "in_subshell_in_double": ""}

# printable text (no NUL: it cannot be in a command line), shell metacharacters weighted in
values = st.text(
    alphabet=st.sampled_from(list("$`'\"\\;|&()<>{} \n\t*?!#~=%ab12"))
    | st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=30,
)


@pytest.mark.parametrize("name", sorted(TEMPLATES))
@settings(max_examples=40, deadline=None)
@given(value=values)
def test_a_quoted_value_reaches_the_shell_unchanged(name: str, value: str) -> None:
    template = TEMPLATES[name]
    at = template.index("@")
    where = context_at(template, at)
    command = template[:at] + quote_for(where, value) + template[at + 1 :]
    done = subprocess.run(["/bin/sh", "-c", command], capture_output=True, timeout=10)
    expected = EXPECTED_PREFIX[name] + value + ("y" if name in ("double", "single") else "")
    if name == "in_subshell_in_double":  # $(...) strips trailing newlines
        expected = value.rstrip("\n")
    assert done.stdout.decode("utf-8", "surrogateescape") == expected


def test_contexts() -> None:
    text = "a @ '@' \"@ $(@ '@') `@`\" <<EOF\n@"
    found = [context_at(text, i) for i, c in enumerate(text) if c == "@"]
    assert found == ["plain", "single", "double", "plain", "single", "plain", "heredoc"]
    assert context_at("x <<< @", 6) == "plain"  # a here-string is an ordinary word


def test_a_heredoc_is_refused() -> None:
    with pytest.raises(UnsafeReference, match="env"):
        quote_for("heredoc", "x")
