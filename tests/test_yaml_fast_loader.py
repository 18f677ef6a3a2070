"""opus' YAML loader (libyaml's with shortcuts) reads every document exactly as PyYAML's
safe loader does: the same values, types, key order, shared objects and errors."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from opus.yamlsafe import FastLoader, YamlProblem, documents


def both(text: str) -> tuple[Any, Any]:
    def read(loader: type) -> Any:
        try:
            return ("ok", list(documents(text, loader)))
        except YamlProblem as problem:
            return ("error", problem.problem, problem.line)

    return read(FastLoader), read(yaml.SafeLoader)


def same_shape(a: Any, b: Any) -> bool:
    """Equal, with the same types all the way down (1 == 1.0 == True is not enough)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same_shape(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same_shape(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b) or (a != a and b != b)  # NaN


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["yes", "No", "on", "~", "0x1F", "0o17", "1_000", "1:30", ".inf", "-.NaN",
                       "2001-12-14", "2001-12-14t21:59:43.10-05:00", "<<", "=", "", "null"])
)  # fmt: skip
data = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=6) | st.integers(), inner, max_size=4)
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(data, st.sampled_from([None, True, False]), st.booleans())
def test_dumped_data_reads_back_the_same(value: Any, flow: bool | None, canonical: bool) -> None:
    text = yaml.safe_dump_all([value, {"k": value}], default_flow_style=flow, canonical=canonical)
    fast, reference = both(text)
    assert fast[0] == "ok" and same_shape(fast, reference), text


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\nb: [x, 2.5, true, ~, 0x10, 1:30]\n",
        "base: &b {x: 1, y: [1, 2]}\nuse: *b\nalso: *b\n",  # shared through aliases
        "base: &b {x: 1}\nmerged: {<<: *b, y: 2}\n",  # a merge key
        "l: &l [1, 2]\nm: {<<: [{a: 1}, {b: 2}]}\nr: *l\n",
        "when: 2001-12-14 21:59:43.10 -5\nday: 2002-12-14\n",  # timestamps
        "bin: !!binary aGVsbG8=\nset: !!set {a, b}\nomap: !!omap [{a: 1}, {b: 2}]\n",
        "pairs: !!pairs [{a: 1}, {a: 2}]\nstr: !!str 12\nint: !!int '7'\nf: !!float '1'\n",
        "? [a, b]\n: unhashable key\n",  # an error, with its line
        "? {a: 1}\n: unhashable key\n",
        "x: !Custom 1\n",  # an unknown tag: an error
        "= : value key\n",
        "a: 1\na: 2\n",  # duplicate keys: the last wins
        "'quoted: no resolve': '123'\nplain: 123\n\"dq\": \"true\"\n",
        "- - - deep\n    - [1, {2: 3}]\n",
        "---\n---\nonly: third\n...\n",
        "",
    ],
)
def test_hand_picked_documents_read_the_same(text: str) -> None:
    fast, reference = both(text)
    assert same_shape(fast, reference), (fast, reference)


def test_shared_nodes_stay_shared() -> None:
    [(_, doc)] = list(documents("base: &b {x: 1}\nuse: *b\n", FastLoader))
    assert doc["use"] is doc["base"]


def test_timestamps_are_datetimes() -> None:
    [(_, doc)] = list(documents("t: 2001-12-14 21:59:43\n", FastLoader))
    assert doc["t"] == datetime.datetime(2001, 12, 14, 21, 59, 43)
