"""Spec checksums: the canonical JSON text they hash is exactly ``json.dumps``'s."""

from __future__ import annotations

import datetime
import hashlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opus.model import canonical_json, checksum

_LEAF = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and infinities included: json.dumps writes them as well
    | st.text()
    | st.dates()  # not JSON: written as str(value), as default=str does
)
_VALUE = st.recursive(
    _LEAF,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


def _reference(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


@given(_VALUE)
def test_canonical_json_is_json_dumps_sorted_and_compact(value: Any) -> None:
    assert canonical_json(value) == _reference(value)
    assert checksum(value) == hashlib.sha256(_reference(value).encode()).hexdigest()


@given(st.dictionaries(st.text(max_size=4), _VALUE, max_size=3))
def test_the_same_text_on_every_call(spec: dict[str, Any]) -> None:
    # the encoder is made once and reused: nothing of one call is left for the next
    first = canonical_json(spec)
    assert canonical_json({"x": [spec, spec]}) == _reference({"x": [spec, spec]})
    assert canonical_json(spec) == first


def test_a_value_that_contains_itself_is_an_error_and_leaves_nothing_behind() -> None:
    loop: dict[str, Any] = {"a": 1}
    loop["self"] = loop
    with pytest.raises((RecursionError, ValueError)):
        canonical_json(loop)
    assert canonical_json({"b": datetime.date(2026, 1, 2), "a": [1.5]}) == (
        '{"a":[1.5],"b":"2026-01-02"}'
    )


def test_keys_that_cannot_be_sorted_fail_as_json_dumps_does() -> None:
    with pytest.raises(TypeError):
        _reference({1: "a", "b": 2})
    with pytest.raises(TypeError):
        canonical_json({1: "a", "b": 2})
