"""Reading a resolved (or recorded) spec string against its raw template, to mask what a
reference to a sensitive output stood for there, whatever value it held then."""

from __future__ import annotations

from opus.secret_refs import _fill, _template
from opus.variables import reference_pattern

PATTERN = reference_pattern()


def fill(raw: str, value: str, *sensitive: str) -> str:
    return _fill(_template(raw, PATTERN, set(sensitive)), value)


def test_each_sensitive_reference_is_masked_and_the_others_are_kept() -> None:
    raw = "pin ${VAR:v:pin} user ${VAR:v:user} keys ${VAR:v:keys}."
    value = 'pin 987.*+?( user ann keys ["k-1", "k-2"].'
    assert fill(raw, value, "${VAR:v:pin}", "${VAR:v:keys}") == "pin *** user ann keys ***."


def test_an_escaped_reference_is_literal_text() -> None:
    raw = "$${VAR:lit} ${VAR:v:token} $${VAR:v:token}"
    assert fill(raw, "${VAR:lit} s3cret ${VAR:v:token}", "${VAR:v:token}") == (
        "${VAR:lit} *** ${VAR:v:token}"
    )


def test_a_value_not_made_from_the_template_is_left_as_it_is() -> None:
    raw = "echo ${VAR:v:token} done"
    assert fill(raw, "echo s3cret finished", "${VAR:v:token}") == "echo s3cret finished"
    assert fill(raw, "say s3cret done", "${VAR:v:token}") == "say s3cret done"


def test_a_secret_takes_as_much_as_it_can_and_its_neighbour_when_adjacent() -> None:
    # the password holds the literal that follows it: the secret is masked whole
    raw = "postgres://app:${VAR:db:password}@${VAR:db:host}/x"
    value = "postgres://app:Xy7692@c3ad3540@db.local/x"
    assert fill(raw, value, "${VAR:db:password}") == "postgres://app:***@db.local/x"
    # side by side nobody can tell where one ends: too much is masked, never too little
    assert fill("a${VAR:x:s}${VAR:y}b", "aSECRETyyb", "${VAR:x:s}") == "a***b"
    assert fill("a${VAR:y}${VAR:x:s}b", "ayySECRETb", "${VAR:x:s}") == "a***b"
    # a reference that is not secret takes as little as it can
    assert fill("${VAR:u} ${VAR:x:s} end", "ann s e c end", "${VAR:x:s}") == "ann *** end"


def test_many_references_in_a_long_text_are_read_without_backtracking() -> None:
    # not a timing assertion: a regular expression of 40 wildcards would backtrack for
    # ages on the near miss below; reading literal by literal it is instant
    raw = " ".join(f"${{VAR:t{i}:k}}" for i in range(40))
    value = " ".join(["x" * 200] * 39) + " " + "y " * 5000
    masked = fill(raw, value, "${VAR:t3:k}")
    assert masked.split(" ")[3] == "***" and masked.count("***") == 1
    assert fill(raw, "x" + value, "${VAR:t3:k}").count("***") == 1
    assert fill(raw, " ".join(["x"] * 39), "${VAR:t3:k}") == " ".join(["x"] * 39)
