"""Property-based: whatever manifests, values files and arguments it is given, the CLI never
shows a traceback, exits 0, 1, 2 or 3 only, and on exit 2 changes no state and no file.

Hypothesis generates valid and broken inputs (misspelt and mistyped metadata and spec keys,
bad names, unknown apiVersions and dependencies, invalid YAML, alias bombs, bad values files
and ``--var``/``--context`` arguments) and runs the CLI in process (click's CliRunner) with
the real hello-world/v1 plugin and SQLite state. Examples are bounded (``max_examples``)
so that the test takes well under a minute.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from opus.cli import cli
from opus.cli.session import Session

pytest.importorskip("opus_hello_world", reason="the hello-world plugin package is not installed")

BOMB = (
    "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
    "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
    "g: [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
)

GOOD_NAMES = st.sampled_from(["a", "b", "web-1", "db_2", "x.y", "Z9"])
BAD_NAMES = st.sampled_from(["..", ".", "a b", "a:b", "a/b", "", "x" * 254, "line\nbreak", "n\x00"])
REFERENCES = st.sampled_from(["${VAR:c}", "${VAR:missing}", "${ENV:HOME}", "${VAR:a:sha256}"])

METADATA_CHANGES: list[tuple[str, Any]] = [
    ("dependecies", [{"tasks": ["a"]}]),
    ("lables", {"x": "y"}),
    ("labels", ["x"]),
    ("labels", {"tier": 1}),
    ("concurrencyGroup", [1]),
    ("concurrencyGroup", "grp"),
    ("autoRollback", "maybe"),
    ("autoRollback", False),
    ("dependencies", "a"),
    ("dependencies", [{"tasks": "a"}]),
    ("dependencies", [{"tasks": ["a"], "commands": ["aply"]}]),
    ("dependencies", [{"labels": {}}]),
    ("dependencies", [{"tasks": ["nosuch"]}]),
    ("dependencies", ["a"]),
    ("processingScopes", [{"commands": ["apply", "plan"], "contexts": ["dev"]}]),
    ("processingScopes", [{"commandz": ["apply"]}]),
    ("timeout", -1),
    ("timeout", 5),
]

SPEC_CHANGES: list[tuple[str, Any]] = [
    ("pth", "out/x.txt"),
    ("path", 5),
    ("path", None),
    ("content", ["a", "list"]),
    ("content", 7),
    ("colour", "red"),
]


@st.composite
def task_docs(draw: st.DrawFn, name: str, change: int) -> Any:
    doc: dict[str, Any] = {
        "apiVersion": "hello-world/v1",
        "kind": "HelloWorld",
        "metadata": {"name": name},
        "spec": {"path": f"out/{name}.txt", "content": draw(st.text(max_size=8))},
    }
    if change == 1:
        key, value = draw(st.sampled_from(METADATA_CHANGES))
        doc["metadata"][key] = value
    elif change == 2:
        key, value = draw(st.sampled_from(SPEC_CHANGES))
        doc["spec"][key] = value
    elif change == 3:
        doc["metadata"]["name"] = draw(BAD_NAMES)
    elif change == 4:
        doc["spec"][draw(st.sampled_from(["path", "content"]))] = draw(REFERENCES)
    elif change == 5:
        doc["apiVersion"] = draw(st.sampled_from(["nope/v1", "", 3]))
    elif change == 6:
        doc[draw(st.sampled_from(["spc", "metdata", "status"]))] = {}
    elif change == 7:
        doc["spec"] = draw(st.sampled_from(["text", [1], None]))
    return doc


@st.composite
def manifests(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 14))
    if kind == 0:
        return draw(st.sampled_from(["{{{", "- [\n", "a: b: c\n", "\tx: 1\n", "", "42\n", BOMB]))
    names = draw(st.lists(GOOD_NAMES, min_size=1, max_size=4, unique=True))
    broken = draw(st.integers(0, len(names) * 2))  # which task to break, if any
    docs = [
        draw(task_docs(name, draw(st.integers(1, 7)) if i == broken else 0))
        for i, name in enumerate(names)
    ]
    if draw(st.booleans()) and len(docs) > 1:
        docs[-1]["metadata"].setdefault("dependencies", [{"tasks": [names[0]]}])
    return yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=False)


# Valid choices are repeated so that most examples get past validation and really run.
VALUES = st.sampled_from(
    [None, None, None, "c: hello\n", "c: hello\n", "c: [1, 2]\n", "[1, 2]\n", "c: [\n", BOMB]
)
COMMANDS = st.sampled_from(["validate", "plan", "apply", "delete", "drift", "describe", "graph"])
CONTEXTS = st.sampled_from(["dev"] * 6 + ["prod.eu-1", "", "..", "a:b", "a b", "x" * 254])
VARS = st.lists(
    st.sampled_from(["c=hi"] * 6 + ["c=3", "c=[1]", "novalue", "=x", "c=${VAR:c}"]), max_size=2
)


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root``, with the content of files."""
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() else None
        for p in sorted(root.rglob("*"))
    }


@contextmanager
def working_in(path: Path) -> Iterator[None]:
    cwd = os.getcwd()
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("OPUS_")}
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(cwd)
        os.environ.update(saved)


def run_cli(workdir: Path, args: list[str]) -> tuple[int, str]:
    with working_in(workdir):
        result = CliRunner().invoke(cli, args, obj=Session(), catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a bug: let Hypothesis show it with its traceback
    return result.exit_code, result.stdout + result.stderr


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    manifest=manifests(),
    values=VALUES,
    command=COMMANDS,
    context=CONTEXTS,
    variables=VARS,
    target=st.sampled_from([None, None, None, "a", "nosuch"]),
    seed_first=st.booleans(),
)
def test_cli_never_crashes_and_exit_2_changes_nothing(
    manifest: str,
    values: str | None,
    command: str,
    context: str,
    variables: list[str],
    target: str | None,
    seed_first: bool,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        state = ["--state", f"sqlite:///{workdir / 'state.db'}"]
        if seed_first:  # some state to protect: one task applied before
            (workdir / "seed.yaml").write_text(
                "apiVersion: hello-world/v1\nkind: HelloWorld\nmetadata: {name: a}\n"
                "spec: {path: out/a.txt, content: seed}\n"
            )
            code, output = run_cli(workdir, ["apply", "-f", "seed.yaml", *state, "-c", "dev"])
            assert code == 0, output
        (workdir / "tasks.yaml").write_text(manifest)
        args = [command, "-f", "tasks.yaml", "--context", context]
        if command not in ("validate", "graph"):
            args += state
        if values is not None:
            (workdir / "values.yaml").write_text(values)
            args += ["--values", "values.yaml"]
        for pair in variables:
            args += ["--var", pair]
        if target is not None:
            args += ["--target", target]
        before = snapshot(workdir)

        code, output = run_cli(workdir, args)

        event(f"{command} exit {code}")
        assert code in (0, 1, 2, 3), output
        assert "Traceback" not in output, output
        assert "unexpected error" not in output, output
        if code == 2:
            assert snapshot(workdir) == before, f"exit 2 changed files or state: {output}"
