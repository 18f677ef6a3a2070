"""Nothing wrong starts running: spec schemas, strict metadata and names through the CLI
(exit 2, every problem listed once, nothing run, written or recorded)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers_cli import hello, invoke, state_url, task, write_manifest

from opus import Engine


def recorded_runs(workdir: Path) -> list[Any]:
    if not (workdir / "state.db").exists():
        return []
    engine = Engine(state=state_url(workdir), entry_points=False)
    try:
        return engine.state.list_runs()
    finally:
        engine.close()


def refused(workdir: Path, *docs: dict[str, Any], command: str = "apply") -> str:
    """Run ``command`` over ``docs``; assert exit 2 with nothing done; return stderr."""
    write_manifest(workdir / "t.yaml", [*docs])
    before = sorted(p.name for p in workdir.iterdir())
    state = [] if command == "validate" else ["--state", state_url(workdir)]
    result = invoke(workdir, command, "-f", "t.yaml", *state, "-c", "dev")
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr and "unexpected error" not in result.stderr
    assert not (workdir / "out").exists(), "no task ran"
    assert recorded_runs(workdir) == [], "no run was recorded (or left 'running')"
    after = sorted(p.name for p in workdir.iterdir() if p.name != "state.db")
    assert after == before
    return result.stderr


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (
            task("hello-world/v1", "h", {"pth": "out/h.txt"}),
            "t.yaml:14, task 'h', field 'spec.pth': unknown key 'pth' (did you mean 'path'?)",
        ),
        (
            task("file/v1", "f", {"path": "out/f", "mode": "99999"}),
            "field 'spec.mode': must be an octal mode like '0644' (0000-7777), quoted",
        ),
        (
            task("shell/v1", "s", {"delete": "true"}),
            "task 's', field 'spec.create': required key is missing",
        ),
        (
            task("http/v1", "d", {"url": "http://127.0.0.1:9/x", "path": "out/d", "sha256": "ab"}),
            "field 'spec.sha256': must be 64 hex digits",
        ),
        (
            hello("m", dependecies=[{"tasks": ["x"]}]),
            "field 'metadata.dependecies': unknown key 'dependecies' (did you mean "
            "'dependencies'?)",
        ),
        (hello("m", autoRollback="maybe"), "'metadata.autoRollback': must be true or false"),
        (
            hello("m", processingScopes=[{"commands": ["aply"]}]),
            "'metadata.processingScopes[0].commands[0]': must be one of",
        ),
        (hello("m", labels=["x"]), "'metadata.labels': must be a mapping, not a list"),
        (hello("m", concurrencyGroup=[1]), "'metadata.concurrencyGroup': must be a string"),
        (hello("m", timeout=0), "'metadata.timeout': must be > 0, not 0"),
        (
            hello("m", dependencies=[{"task": ["x"]}]),
            "'metadata.dependencies[0].task': unknown key 'task' (did you mean 'tasks'?)",
        ),
        (
            {**hello("m"), "spc": {}},
            "unknown top-level key(s): spc (did you mean 'spec'?)",
        ),
    ],
)
@pytest.mark.usefixtures("yaml_loader")
def test_bad_specs_and_metadata_are_refused_before_anything_runs(
    tmp_path: Path, doc: dict[str, Any], expected: str
) -> None:
    err = refused(tmp_path, hello("first"), doc)
    assert expected in err, err


def test_misspelt_command_names_get_did_you_mean(tmp_path: Path) -> None:
    err = refused(tmp_path, hello("m", dependencies=[{"tasks": ["a"], "commands": ["aply"]}]))
    assert "(did you mean 'apply'?)" in err


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("..", "must start and end with a letter or digit"),
        (".hidden", "must start and end with a letter or digit"),
        ("a b", "contains ' '"),
        ("a:b", "contains ':'"),
        ("a/b", "contains '/'"),
        ("two\nlines", "contains '\\n'"),
        ("nul\x00", "contains '\\x00'"),
        ("x" * 254, "254 characters long (at most 253)"),
    ],
)
def test_bad_task_names_are_refused(tmp_path: Path, name: str, reason: str) -> None:
    err = refused(tmp_path, hello("ok"), hello(name), command="validate")
    assert "field 'metadata.name': invalid task name" in err and reason in err, err


@pytest.mark.parametrize("context", ["", "..", "a\nb", "nul\x00", "a:b", "a/b", " dev"])
def test_bad_context_names_are_refused(tmp_path: Path, context: str) -> None:
    write_manifest(tmp_path / "t.yaml", [hello("a")])
    for command in ("validate", "plan", "apply"):
        state = [] if command == "validate" else ["--state", state_url(tmp_path)]
        result = invoke(tmp_path, command, "-f", "t.yaml", *state, "-c", context)
        assert result.returncode == 2, result
        assert "invalid context name" in result.stderr
    assert not (tmp_path / "out").exists() and recorded_runs(tmp_path) == []


def test_good_names_pass(tmp_path: Path) -> None:
    write_manifest(tmp_path / "t.yaml", [hello("a.b-c_9"), hello("Z"), hello("x" * 253)])
    result = invoke(tmp_path, "validate", "-f", "t.yaml", "-c", "prod.eu-1_b")
    assert result.returncode == 0, result


def test_every_problem_is_listed_once(tmp_path: Path) -> None:
    err = refused(
        tmp_path,
        task("hello-world/v1", "a", {"pth": "x"}),
        hello("b", labels=["x"], concurrencyGroup=[1]),
        task("file/v1", "c", {"path": "out/c", "mode": True, "colour": "red"}),
    )
    lines = [line for line in err.splitlines() if line.startswith("  - ")]
    assert err.startswith("error: 5 problems found:")
    assert len(lines) == len(set(lines)) == 5, err


def test_a_run_with_references_of_other_types_passes(tmp_path: Path) -> None:
    """Whole-string references stand for ints, lists and bools until they are resolved."""
    write_manifest(
        tmp_path / "t.yaml",
        [
            task(
                "shell/v1",
                "s",
                {
                    "create": "${VAR:commands}",
                    "timeout": "${VAR:seconds}",
                    "inheritEnv": "${VAR:inherit}",
                    # whole commands from a variable: without this they are quoted as data
                    "rawReferences": True,
                },
            )
        ],
    )
    args = ["-f", "t.yaml", "-c", "dev"]
    variables = ["--var", "commands=[]", "--var", "seconds=5", "--var", "inherit=true"]
    assert invoke(tmp_path, "validate", *args, *variables).returncode == 0
    args += ["--state", state_url(tmp_path)]
    values = tmp_path / "values.yaml"
    values.write_text("commands: ['echo A=1', 'echo B=2']\nseconds: 5\ninherit: true\n")
    result = invoke(tmp_path, "apply", *args, "--values", str(values), "-o", "json")
    assert result.returncode == 0, result
    assert '"A": "1"' in result.stdout or '"A":"1"' in result.stdout.replace(" ", "")
    # a value of the wrong type fails that task (not the whole CLI), with the spec path
    values.write_text("commands: 5\nseconds: 5\ninherit: true\n")
    result = invoke(tmp_path, "apply", *args, "--values", str(values))
    assert result.returncode == 1, result
    assert "spec.create" in result.stdout + result.stderr and "Traceback" not in result.stderr


@pytest.mark.usefixtures("yaml_loader")
def test_problems_point_at_the_line_of_the_key(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(
        "apiVersion: hello-world/v1\n"  # 1
        "kind: HelloWorld\n"
        "metadata:\n"
        "  name: a\n"
        "  labels: [x]\n"  # 5
        "spec:\n"
        "  path: out/a\n"
        "  contnt: y\n"  # 8
        "---\n"
        "- apiVersion: file/v1\n"  # 10: a list of tasks
        "  kind: File\n"
        "  metadata: {name: b}\n"
        "  spec: {path: out/b, mode: '9999'}\n"  # 13
        "- apiVersion: file/v1\n"
        "  kind: File\n"
        "  metadata: {name: c}\n"
        "  spec:\n"
        "    path: out/c\n"  # 18
        "    force: 'no'\n"  # 19
        "  # path is missing below: the spec's own line is given\n"
        "- {apiVersion: file/v1, kind: File, metadata: {name: d}, spec: {mode: '0644'}}\n"  # 21
    )
    result = invoke(tmp_path, "validate", "-f", "t.yaml")
    assert result.returncode == 2
    assert result.stderr.splitlines()[1:] == [
        "  - t.yaml:5, task 'a', field 'metadata.labels': must be a mapping, not a list",
        "  - t.yaml:8, task 'a', field 'spec.contnt': unknown key 'contnt' (did you mean "
        "'content'?)",
        "  - t.yaml:13, task 'b', field 'spec.mode': must be an octal mode like '0644' "
        "(0000-7777), quoted (YAML reads 644 as a decimal number)",
        "  - t.yaml:19, task 'c', field 'spec.force': must be true or false, not str 'no'",
        "  - t.yaml:21, task 'd', field 'spec.path': required key is missing",
    ]


def test_a_malformed_reference_is_said_once_with_its_file(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(
        "apiVersion: file/v1\nkind: File\nmetadata: {name: f}\nspec: {path: '${VAR:}'}\n"
    )
    result = invoke(tmp_path, "validate", "-f", "t.yaml")
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "error: t.yaml:1: task 'f', spec.path: malformed reference '${VAR:}'"
    )


def test_an_api_version_that_is_not_a_string_is_not_called_missing(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text("apiVersion: 1\nkind: File\nmetadata: {name: f}\nspec: {}\n")
    result = invoke(tmp_path, "validate", "-f", "t.yaml")
    assert result.returncode == 2
    assert "field 'apiVersion': 'apiVersion' must be a string, not int 1" in result.stderr
    assert "missing" not in result.stderr


def test_an_unknown_top_level_key_or_a_duplicate_hides_no_spec_problem(tmp_path: Path) -> None:
    """One pass lists them all: a document with a misspelt top-level key still has its spec
    checked, and so does every definition of a duplicated name, not only the last."""
    misspelt = {**task("hello-world/v1", "a", {"pth": "x"}), "spek": {}}
    first_b = task("hello-world/v1", "b", {"path": "out/b.txt", "contnt": "x"})
    second_b = hello("b")
    err = refused(tmp_path, misspelt, first_b, second_b)
    assert "field 'spek': unknown top-level key(s): spek (did you mean 'spec'?)" in err
    assert "task 'a', field 'spec.pth': unknown key 'pth' (did you mean 'path'?)" in err
    assert "field 'metadata.name': duplicate task name 'b'" in err
    assert "task 'b', field 'spec.contnt': unknown key 'contnt' (did you mean 'content'?)" in err
    assert err.startswith("error: 4 problems found:")


def test_a_misspelt_top_level_key_is_said_once_not_also_as_missing(tmp_path: Path) -> None:
    """``spce`` is read as the ``spec`` it was meant to be: not reported missing, its
    content still checked, and the tasks that depend on the document still find it."""
    (tmp_path / "t.yaml").write_text(
        "apiVersion: hello-world/v1\nkind: HelloWorld\nmetadata: {name: a}\n"
        "spce: {path: out/a.txt, colour: red}\n---\n"
        "apiVersoin: hello-world/v1\nkind: HelloWorld\nmetadata: {name: b}\n"
        "spec: {path: out/b.txt, content: '${VAR:a:sha256}'}\n---\n"
        "apiVersion: hello-world/v1\nkind: HelloWorld\nmetadata: {name: c, dependencies: [a]}\n"
        "spec: {path: out/c.txt}\n"
    )
    result = invoke(tmp_path, "validate", "-f", "t.yaml")
    assert result.returncode == 2
    assert result.stderr.startswith("error: 3 problems found:"), result.stderr
    assert "unknown top-level key(s): spce (did you mean 'spec'?)" in result.stderr
    assert "unknown top-level key(s): apiVersoin (did you mean 'apiVersion'?)" in result.stderr
    assert "task 'a', field 'spec.colour': unknown key 'colour'" in result.stderr
    assert "missing" not in result.stderr and "unknown task" not in result.stderr
