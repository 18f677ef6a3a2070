"""The shell quoting of referenced values: whatever a value holds, sh reads it back as data."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opus_shell.quoting import UnsafeReference, context_at, quote_for, rendered_forms

TEMPLATES = {
    "plain": "printf '%s' @",
    "double": 'printf "%s" "x@y"',
    "single": "printf '%s' 'x@y'",
    "in_subshell_in_double": 'printf "%s" "$(printf "%s" @)"',
}
EXPECTED_PREFIX = {"plain": "", "double": "x", "single": "x", "in_subshell_in_double": ""}

#: Templates run by bash (for $'...'), each printing "<" + the value + ">"; @ is the value.
#: Comments with quotes, $# and ${#x}, subshells and arithmetic come before the value.
BASH_TEMPLATES = {
    "after_comment": "# don't stop\nprintf '<%s>' @",
    "after_continued_comment": "true \\\n# it's\nprintf '<%s>' @",
    "after_comment_in_subst": 'printf "<%s>" "$( # it\'s\nprintf %s @)"',
    "ansi": "printf '%s' $'<@>'",
    "ansi_with_escapes": "printf '%s' $'<\\\\@\\x3e'",
    "subshell_in_subst_in_double": 'printf "<%s>" "$( (true); printf %s @)"',
    "arith_and_hash_before": "set -- a; : $# ${#1} $((1+(2))) a#b; printf '<%s>' @",
    "double_after_backtick_comment": 'printf "<%s>" "`# it\'s`@"',
}
BASH_EXPECTED_PREFIX = {"ansi_with_escapes": "<\\"}

# printable text (no NUL: it cannot be in a command line), shell metacharacters weighted in
values = st.text(
    alphabet=st.sampled_from(list("$`'\"\\;|&()<>{} \n\t*?!#~=%ab12"))
    | st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=30,
)


def run_quoted(shell: str, template: str, value: str) -> tuple[bytes, str]:
    """Run ``template`` with ``value`` quoted for the context at its ``@`` in ``shell``;
    ``(stdout, the command)``."""
    at = template.index("@")
    command = template[:at] + quote_for(context_at(template, at), value) + template[at + 1 :]
    done = subprocess.run([shell, "-c", command], capture_output=True, timeout=10)
    return done.stdout, command


@pytest.mark.parametrize("name", sorted(TEMPLATES))
@settings(max_examples=40, deadline=None)
@given(value=values)
def test_a_quoted_value_reaches_the_shell_unchanged(name: str, value: str) -> None:
    stdout, _ = run_quoted("/bin/sh", TEMPLATES[name], value)
    expected = EXPECTED_PREFIX[name] + value + ("y" if name in ("double", "single") else "")
    if name == "in_subshell_in_double":  # $(...) strips trailing newlines
        expected = value.rstrip("\n")
    assert stdout.decode("utf-8", "surrogateescape") == expected


def test_contexts() -> None:
    text = "a @ '@' \"@ $(@ '@') `@`\" <<EOF\n@"
    found = [context_at(text, i) for i, c in enumerate(text) if c == "@"]
    assert found == ["plain", "single", "double", "plain", "single", "plain", "heredoc"]
    assert context_at("x <<< @", 6) == "plain"  # a here-string is an ordinary word


def test_a_heredoc_is_refused() -> None:
    with pytest.raises(UnsafeReference, match="env"):
        quote_for("heredoc", "x")


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
@pytest.mark.parametrize("name", sorted(BASH_TEMPLATES))
@settings(max_examples=40, deadline=None)
@given(value=values)
def test_a_quoted_value_reaches_bash_unchanged_in_harder_contexts(name: str, value: str) -> None:
    stdout, command = run_quoted("bash", BASH_TEMPLATES[name], value)
    if "subst" in name:  # $(...) strips trailing newlines
        value = value.rstrip("\n")
    prefix = BASH_EXPECTED_PREFIX.get(name, "<")
    assert stdout.decode("utf-8", "surrogateescape") == prefix + value + ">", command


@settings(max_examples=40, deadline=None)
@given(value=values)
def test_a_value_in_a_comment_never_ends_it(value: str) -> None:
    stdout, _ = run_quoted("/bin/sh", "# don't print @\nprintf done", value)
    assert stdout == b"done"


@pytest.mark.parametrize(
    ("template", "where"),
    [
        ("# it's @", "comment"),
        ("# it's\n@", "plain"),
        ("echo a \\\n# it's\n@", "plain"),
        ("echo a\\\n# it's\n@", "single"),
        ("a#'b @", "single"),
        ("echo $#' @'", "single"),
        ("echo ${#x}' @'", "single"),
        ("echo $'a @", "ansi"),
        ("echo $'a\\\\' @", "plain"),
        ('echo "$\'" @', "plain"),
        ('echo "$( (true); @"', "plain"),
        ('echo "$( (true) )@"', "double"),
        ('echo "$(x)"#\'@', "single"),
        ("echo `# '` @", "plain"),
        ('echo "`# \'`@"', "double"),
        ("x=$(( @ ))", "arith"),
        ("(( @ ))", "arith"),
        ("x=$((1)) @", "plain"),
        ("$(case x in x) :;; esac) @", "case"),
        ("echo $'it\\'s @", "ansi-escaped"),
    ],
)
def test_harder_contexts(template: str, where: str) -> None:
    assert context_at(template, template.index("@")) == where


@pytest.mark.parametrize("where", ["heredoc", "arith", "case", "ansi-escaped"])
def test_unsafe_contexts_are_refused(where: str) -> None:
    with pytest.raises(UnsafeReference, match="env"):
        quote_for(where, "x")  # type: ignore[arg-type]


def test_a_decimal_integer_stands_in_arithmetic_as_it_is() -> None:
    assert quote_for("arith", "42") == "42" and quote_for("arith", "-7") == "-7"
    for value in ("a[$(touch P)]", "1+1", "x", "0x10", "4 2", ""):
        with pytest.raises(UnsafeReference, match="decimal integer"):
            quote_for("arith", value)


def test_rendered_forms_cover_every_quoting() -> None:
    value = "Sup3r$ecret!p'ss"
    forms = rendered_forms(value)
    for where in ("plain", "double", "single", "ansi", "comment"):
        assert quote_for(where, value) in forms
    assert {value, "Sup3r\\$ecret!p'ss"} <= forms
