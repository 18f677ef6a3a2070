"""The pure decisions of :mod:`opus.planner`, table by table."""

from __future__ import annotations

from typing import Any

import pytest

from opus import Action, Result, TaskState
from opus.model import checksum
from opus.planner import (
    Decision,
    decide,
    find_orphans,
    prune_order,
    read_only_outcome,
    replace_paths,
    unmask,
)
from opus.variables import UNKNOWN

SPEC = {"path": "a.txt", "content": "x", "nested": {"mode": "0644"}}


def record(spec: dict[str, Any] | None = SPEC, status: str = "done", **kw: Any) -> TaskState:
    return TaskState(
        context="dev",
        name="t",
        applied_spec=spec,
        spec_checksum=None if spec is None else checksum(spec),
        status=status,
        **kw,
    )


GONE = Result(drifted=True, exists=False, message="a.txt is missing")
DRIFTED = Result(drifted=True, message="content changed")
IN_SYNC = Result(drifted=False)


@pytest.mark.parametrize(
    ("desired", "prior", "refresh", "replace_on", "expected"),
    [
        # no record -> create
        (SPEC, None, None, (), Decision(Action.CREATE, "not in state")),
        (SPEC, record(None), None, (), Decision(Action.CREATE, "not in state")),
        # refresh says gone -> create again, whatever the spec
        (SPEC, record(), GONE, (), Decision(Action.CREATE, "gone: a.txt is missing")),
        ({**SPEC, "content": "y"}, record(), GONE, ("path",),
         Decision(Action.CREATE, "gone: a.txt is missing")),
        # spec changed on a replace_on path (or under it) -> replace
        ({**SPEC, "path": "b.txt"}, record(), None, ("path",),
         Decision(Action.REPLACE, "path changed", replace_paths=("path",))),
        ({**SPEC, "nested": {"mode": "0600"}}, record(), IN_SYNC, ("nested",),
         Decision(Action.REPLACE, "nested changed", replace_paths=("nested",))),
        # spec changed elsewhere -> update
        ({**SPEC, "content": "y"}, record(), None, ("path",),
         Decision(Action.UPDATE, "spec changed")),
        # ... and a drift found by the refresh as well is still reported
        ({**SPEC, "content": "y"}, record(), DRIFTED, (),
         Decision(Action.UPDATE, "spec changed; drifted: content changed", drifted=True)),
        ({**SPEC, "path": "b.txt"}, record(), DRIFTED, ("path",),
         Decision(Action.REPLACE, "path changed; drifted: content changed", drifted=True,
                  replace_paths=("path",))),
        (SPEC, record(status="failed"), DRIFTED, (),
         Decision(Action.UPDATE, "last failed", drifted=True)),
        # a value known only after apply -> update (it may change)
        ({**SPEC, "content": UNKNOWN}, record(), None, (), Decision(Action.UPDATE, "spec changed")),
        # last run failed -> update
        (SPEC, record(status="failed"), None, (), Decision(Action.UPDATE, "last failed")),
        # drifted -> update, with the processor's reason
        (SPEC, record(), DRIFTED, (),
         Decision(Action.UPDATE, "drifted: content changed", drifted=True)),
        (SPEC, record(), Result(drifted=True), (),
         Decision(Action.UPDATE, "drifted: the resource changed", drifted=True)),
        # nothing to do
        (SPEC, record(), IN_SYNC, ("path",), Decision(None)),
        (SPEC, record(), None, (), Decision(None)),
    ],
)  # fmt: skip
def test_decide(
    desired: dict[str, Any],
    prior: TaskState | None,
    refresh: Result | None,
    replace_on: tuple[str, ...],
    expected: Decision,
) -> None:
    assert decide(desired, prior, refresh, replace_on) == expected


def test_replacement_compares_the_redacted_spec_with_the_recorded_one() -> None:
    recorded = record({"url": "https://u:***@h/x", "path": "p"})
    desired = {"url": "https://u:secret@h/x", "path": "p"}
    redacted = {"url": "https://u:***@h/x", "path": "p"}
    decision = decide(desired, recorded, None, ("url",), redacted=redacted)
    assert decision.action == Action.UPDATE  # the secret is not a replace_on change


@pytest.mark.parametrize(
    ("old", "new", "keys", "expected"),
    [
        ({"a": {"b": 1}}, {"a": {"b": 2}}, ("a",), ("a",)),
        ({"a": {"b": 1}}, {"a": {"b": 2}}, ("a.b",), ("a.b",)),
        ({"a": {"b": 1}}, {"a": {"b": 2}}, ("a.c",), ()),
        ({"ab": 1}, {"ab": 2}, ("a",), ()),  # a prefix of a key is not the key
        ({"a": 1}, {}, ("a",), ("a",)),
        (None, {"a": 1}, ("a",), ()),
    ],
)
def test_replace_paths(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    keys: tuple[str, ...],
    expected: tuple[str, ...],
) -> None:
    assert replace_paths(old, new, keys) == expected


@pytest.mark.parametrize(
    ("recorded", "desired", "expected"),
    [
        ({"token": "***"}, {"token": "s3cret"}, {"token": "s3cret"}),
        ({"url": "https://u:***@h"}, {"url": "https://u:pw@h"}, {"url": "https://u:pw@h"}),
        ({"env": [{"v": "***"}]}, {"env": [{"v": "pw"}]}, {"env": [{"v": "pw"}]}),
        # nothing at that path in the desired spec (an orphan): the mask stays
        ({"token": "***"}, {}, {"token": "***"}),
        ({"token": "***", "path": "old"}, {"path": "new"}, {"token": "***", "path": "old"}),
        # unmasked values are the recorded ones, even when the desired spec differs
        ({"path": "old"}, {"path": "new"}, {"path": "old"}),
    ],
)
def test_unmask(recorded: Any, desired: Any, expected: Any) -> None:
    assert unmask(recorded, desired) == expected


def test_find_orphans() -> None:
    assert find_orphans(["b", "a", "c"], ["c", "d"]) == ["a", "b"]
    assert find_orphans([], ["x"]) == []


def test_prune_order_puts_dependents_first() -> None:
    records = [
        TaskState("dev", "db"),
        TaskState("dev", "app", dependencies=("db", "gone-elsewhere")),
        TaskState("dev", "web", dependencies=("app",)),
        TaskState("dev", "lone"),
    ]
    order = prune_order(records)
    assert sorted(order) == ["app", "db", "lone", "web"]
    assert order.index("web") < order.index("app") < order.index("db")


@pytest.mark.parametrize(
    ("desired", "result", "supported", "expected"),
    [
        (SPEC, IN_SYNC, True, (False, False, False)),
        (SPEC, DRIFTED, True, (True, False, True)),
        (SPEC, Result(exists=False, message="gone"), True, (True, False, True)),
        (SPEC, Result(), False, (None, False, None)),  # nobody can tell
        ({**SPEC, "content": "y"}, Result(), False, (True, True, None)),
    ],
)
def test_read_only_outcome_of_drift(
    desired: dict[str, Any], result: Result, supported: bool, expected: tuple[Any, ...]
) -> None:
    outcome = read_only_outcome(
        "t", "detect_drift", desired, record(), result, supported=supported, redacted=desired
    )
    assert (outcome.drifted, outcome.spec_drift, outcome.resource_drift) == expected
    if outcome.spec_drift:
        assert (outcome.details or {})["spec_diff"]["changed"] == {"content": ["x", "y"]}
