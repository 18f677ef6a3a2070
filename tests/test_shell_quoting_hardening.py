"""Quoting holes in ``shell/v1`` found in review: comments, ``$'...'``, nested parentheses in
``$(...)``, and secrets whose quoted form escaped redaction.

Each test runs the real CLI (``python -m opus``) with the installed opus-shell plugin and a
real ``/bin/sh`` (or bash where the syntax is bash's), and checks that no ``PWNED*`` file
appears and that the value comes back literally.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers_shell import apply, opus, pwned, shell_task, write

pytest.importorskip("opus_shell", reason="needs the opus-shell plugin installed")

BASH = shutil.which("bash")
needs_bash = pytest.mark.skipif(BASH is None, reason="bash not installed")


def apply_with(workdir: Path, *docs: dict, var: list[str]) -> dict:
    """Write ``docs`` and apply them with each ``NAME=VALUE`` of ``var`` as a ``--var``."""
    write(workdir, *docs)
    return apply(workdir, *[arg for item in var for arg in ("--var", item)])


# -- 1. a comment holding an apostrophe ---------------------------------------------------


def test_an_apostrophe_in_a_comment_does_not_unquote_a_later_value(tmp_path: Path) -> None:
    command = "# don't fail when the name is empty\necho hello ${VAR:who}\n"
    result = apply_with(tmp_path, shell_task("c", {"create": command}), var=["who=x; touch PWNED"])
    assert pwned(tmp_path) == []
    assert result["tasks"]["c"]["outputs"]["stdout"] == "hello x; touch PWNED"


def test_comment_forms_and_hashes_that_are_not_comments(tmp_path: Path) -> None:
    commands = {
        "after_semicolon": "true;# it's fine\nprintf '%s|' ${VAR:who}",
        "after_space": "true # it's fine\nprintf '%s|' \"${VAR:who}\"",
        "in_subst": 'x=$( # it\'s fine\nprintf "%s" ${VAR:who})\nprintf "%s|" "$x"',
        "not_in_word": "printf '%s|' a#b ${VAR:who}",  # a#b is a word: a' below is quoted
        "dollar_hash": "set -- a; printf '%s|' $# ${#1} ${VAR:who}",
    }
    value = "x'; touch PWNED; echo '"
    docs = [shell_task(name, {"create": c}) for name, c in commands.items()]
    result = apply_with(tmp_path, *docs, var=[f"who={value}"])
    assert pwned(tmp_path) == []
    outputs = {name: result["tasks"][name]["outputs"]["stdout"] for name in commands}
    assert outputs == {
        "after_semicolon": value + "|",
        "after_space": value + "|",
        "in_subst": value + "|",
        "not_in_word": "a#b|" + value + "|",
        "dollar_hash": "1|1|" + value + "|",
    }


def test_a_reference_inside_a_comment_stays_inside_it(tmp_path: Path) -> None:
    command = "# deploying ${VAR:who}\necho done"
    result = apply_with(
        tmp_path, shell_task("c", {"create": command}), var=["who=x\ntouch PWNED\n#"]
    )
    assert pwned(tmp_path) == []
    assert result["tasks"]["c"]["outputs"]["stdout"] == "done"


# -- 2. ANSI-C quoting --------------------------------------------------------------------


@needs_bash
def test_a_value_inside_ansi_c_quotes_is_data(tmp_path: Path) -> None:
    value = "x\\';touch PWNED1;#"
    command = "printf '%s\\n' $'name:\\t${VAR:who}'"
    result = apply_with(
        tmp_path, shell_task("a", {"create": command, "shell": BASH}), var=[f"who={value}"]
    )
    assert pwned(tmp_path) == []
    assert result["tasks"]["a"]["outputs"]["stdout"] == "name:\t" + value


def test_a_value_inside_ansi_c_quotes_is_data_under_sh_too(tmp_path: Path) -> None:
    """A shell without $'...' reads it as $ and a single-quoted string: still data."""
    value = "x\\';touch PWNED1;#"
    command = "printf '%s\\n' $'name:${VAR:who}'"
    result = apply_with(tmp_path, shell_task("a", {"create": command}), var=[f"who={value}"])
    assert pwned(tmp_path) == []
    assert value in result["tasks"]["a"]["outputs"]["stdout"]


def test_an_escaped_quote_before_the_reference_in_ansi_c_quotes_is_refused(
    tmp_path: Path,
) -> None:
    """Shells with and without $'...' disagree where that string ends: refuse to guess."""
    command = "printf '%s\\n' $'it\\'s ${VAR:who}'"
    result = apply_with(tmp_path, shell_task("a", {"create": command}), var=["who=x"])
    task = result["tasks"]["a"]
    assert task["status"] == "failed"
    assert "spec.create" in task["error"] and "$'" in task["error"]


# -- 3. parentheses inside $(...) -------------------------------------------------------


def test_a_subshell_inside_a_command_substitution_in_double_quotes(tmp_path: Path) -> None:
    command = 'echo "$( (true); echo ${VAR:who2} )"'
    result = apply_with(tmp_path, shell_task("s", {"create": command}), var=["who2=x;touch PWNED2"])
    assert pwned(tmp_path) == []
    assert result["tasks"]["s"]["outputs"]["stdout"] == "x;touch PWNED2"


def test_arithmetic_and_nested_substitutions_keep_their_context(tmp_path: Path) -> None:
    command = 'echo "$(echo $((1 + (2))) "$(echo x | (cat))" ${VAR:who})"'
    result = apply_with(tmp_path, shell_task("s", {"create": command}), var=["who=y;touch PWNED"])
    assert pwned(tmp_path) == []
    assert result["tasks"]["s"]["outputs"]["stdout"] == "3 x y;touch PWNED"


def test_a_case_inside_a_command_substitution_is_refused(tmp_path: Path) -> None:
    command = 'echo "$(case a in a) echo ${VAR:who};; esac)"'
    result = apply_with(tmp_path, shell_task("k", {"create": command}), var=["who=x;touch PWNED"])
    assert pwned(tmp_path) == []
    task = result["tasks"]["k"]
    assert task["status"] == "failed"
    assert "spec.create" in task["error"] and "case" in task["error"]


# -- 4. secrets in their quoted forms -----------------------------------------------------


SECRET = "Sup3r$ecret!pass'q\"b`t\\z"


def test_a_sensitive_value_is_masked_in_every_quoted_form(tmp_path: Path) -> None:
    spec = {
        "env": {"PGPASSWORD": {"value": "${VAR:pw}", "sensitive": True}},
        "create": [
            "printf '%s' ${VAR:pw} '${VAR:pw}' >/dev/null",
            '# ${VAR:pw}\necho "${VAR:pw}" >&2; exit 3',
        ],
    }
    result = apply_with(tmp_path, shell_task("p", spec), var=[f"pw={SECRET}"])
    task = result["tasks"]["p"]
    assert task["status"] in ("failed", "rolled_back")
    shown = opus(tmp_path, "state", "show", "p", "--state", "sqlite:///s.db", "-o", "json")
    plan = opus(
        tmp_path,
        "plan",
        "-f",
        "tasks.yaml",
        "--state",
        "sqlite:///s.db",
        "--var",
        f"pw={SECRET}",
        "-o",
        "json",
    )
    everything = json.dumps(result) + shown.stdout + shown.stderr + plan.stdout + plan.stderr
    for form in ("Sup3r", "ecret!pass"):
        assert form not in everything, form
    assert "***" in task["error"]
