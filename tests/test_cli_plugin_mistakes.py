"""Mistakes a plugin or its user makes, met on the command line: a protected context changed
by ``state rm`` / ``import`` / ``state unlock`` / ``state prune`` without ``--yes``, a plugin
that cannot be imported or built, hooks returning the wrong type, plugin-load failures with
``-o json`` / ``-o ndjson``, and plugin names that clash with the builtins."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from helpers_cli import hello, invoke, run_opus, state_url, write_manifest

# -- protected contexts -----------------------------------------------------------------------


@pytest.fixture
def protected(tmp_path: Path) -> Path:
    write_manifest(tmp_path / "t.yaml", [hello("a")])
    url = state_url(tmp_path)
    for context in ("dev", "prod"):
        done = invoke(tmp_path, "apply", "-f", "t.yaml", "-c", context, "--state", url)
        assert done.returncode == 0, done.stderr
    (tmp_path / "opus.yaml").write_text("protected: [prod]\n")
    return tmp_path


def recorded(workdir: Path, context: str) -> list[str]:
    url = state_url(workdir)
    listed = invoke(workdir, "state", "list", "-c", context, "--state", url, "-o", "json")
    assert listed.returncode == 0, listed.stderr
    return [r["name"] for r in json.loads(listed.stdout)]


def assert_refused(result: object, command: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)  # type: ignore[attr-defined]
    err = result.stderr  # type: ignore[attr-defined]
    assert f"context 'prod' is protected (config 'protected'): opus {command}" in err, err
    assert "pass --yes" in err and "Nothing was changed." in err


def test_state_rm_in_a_protected_context_needs_yes(protected: Path) -> None:
    url = state_url(protected)
    assert_refused(invoke(protected, "state", "rm", "a", "-c", "prod", "--state", url), "state rm")
    assert recorded(protected, "prod") == ["a"]
    dev = invoke(protected, "state", "rm", "a", "-c", "dev", "--state", url)
    assert dev.returncode == 0, dev.stderr
    done = invoke(protected, "state", "rm", "a", "-c", "prod", "--state", url, "--yes")
    assert done.returncode == 0, done.stderr
    assert recorded(protected, "prod") == []


def test_import_into_a_protected_context_needs_yes(protected: Path) -> None:
    url = state_url(protected)
    rm = invoke(protected, "state", "rm", "a", "-c", "prod", "--state", url, "-y")
    assert rm.returncode == 0, rm.stderr
    args = ("import", "a", "-f", "t.yaml", "-c", "prod", "--state", url)
    assert_refused(invoke(protected, *args), "import")
    assert recorded(protected, "prod") == []
    done = invoke(protected, *args, "--yes")
    assert done.returncode == 0, done.stderr
    assert recorded(protected, "prod") == ["a"]


def test_state_unlock_and_prune_of_a_protected_context_need_yes(protected: Path) -> None:
    url = state_url(protected)
    unlock = invoke(protected, "state", "unlock", "-c", "prod", "--state", url)
    assert_refused(unlock, "state unlock")
    assert invoke(protected, "state", "unlock", "-c", "dev", "--state", url).returncode == 0
    assert invoke(protected, "state", "unlock", "-c", "prod", "--state", url, "-y").returncode == 0
    prune = invoke(protected, "state", "prune", "--keep", "0", "--state", url)
    assert prune.returncode == 2, prune.stderr
    assert "protected context(s) prod" in prune.stderr and "pass --yes" in prune.stderr
    runs = invoke(protected, "runs", "list", "--state", url, "-o", "json")
    assert len(json.loads(runs.stdout)) == 2
    done = invoke(protected, "state", "prune", "--keep", "0", "--state", url, "--yes")
    assert done.returncode == 0, done.stderr


# -- plugins that cannot be loaded or built -------------------------------------------------

BAD_INIT = """
import opus
from opus import TaskProcessor


class Broken(TaskProcessor):
    api_version = "broken/v1"

    def __init__(self):
        raise RuntimeError("no credentials")


@opus.hookimpl
def opus_register_processors():
    return [Broken]
"""

WRONG_TYPES = {
    "opus_command_map": "return ['apply']",
    "opus_variable_sources": "return ['SECRET']",
    "opus_executor": "return 'local'",
    "opus_state_backend": "return {'url': url}",
}


def write_module(workdir: Path, name: str, source: str) -> None:
    (workdir / f"{name}.py").write_text(textwrap.dedent(source))


@pytest.mark.parametrize(
    ("source", "kind"),
    [("def x(:\n", "SyntaxError"), ("raise RuntimeError('no network')\n", "RuntimeError")],
)
def test_a_plugin_module_that_fails_on_import_is_named(
    tmp_path: Path, source: str, kind: str
) -> None:
    write_module(tmp_path, "badmod", source)
    result = run_opus(tmp_path, "plugins", plugins=("badmod",))
    assert result.returncode == 2, result.stderr
    assert "unexpected error" not in result.stderr
    assert "cannot load plugin module 'badmod' (--plugin)" in result.stderr
    assert kind in result.stderr


def test_a_processor_that_cannot_be_built_fails_only_its_tasks(tmp_path: Path) -> None:
    write_module(tmp_path, "badinit", BAD_INIT)
    listed = run_opus(tmp_path, "plugins", plugins=("badinit",))
    assert listed.returncode == 0, listed.stderr
    assert "cannot build processor badinit.Broken" in listed.stdout
    write_manifest(tmp_path / "ok.yaml", [hello("a")])
    ok = run_opus(tmp_path, "apply", "-f", "ok.yaml", plugins=("badinit",))
    assert ok.returncode == 0, ok.stderr
    write_manifest(tmp_path / "bad.yaml", [{"apiVersion": "broken/v1", "kind": "B",
                                          "metadata": {"name": "b"}, "spec": {}}])  # fmt: skip
    bad = run_opus(tmp_path, "apply", "-f", "bad.yaml", plugins=("badinit",))
    assert bad.returncode == 2, bad.stderr
    assert "plugin 'badinit': cannot build processor badinit.Broken" in bad.stderr
    assert "RuntimeError: no credentials" in bad.stderr


@pytest.mark.parametrize("hook", sorted(WRONG_TYPES))
def test_a_hook_returning_the_wrong_type_is_named(tmp_path: Path, hook: str) -> None:
    args = "url" if hook in ("opus_executor", "opus_state_backend") else ""
    write_module(
        tmp_path,
        "wrongtype",
        f"import opus\n\n@opus.hookimpl\ndef {hook}({args}):\n    {WRONG_TYPES[hook]}\n",
    )
    write_manifest(tmp_path / "t.yaml", [hello("a", "${SECRET:x}" if "var" in hook else "hi")])
    result = run_opus(tmp_path, "apply", "-f", "t.yaml", plugins=("wrongtype",))
    assert result.returncode == 2, result.stderr
    assert "unexpected error" not in result.stderr
    assert f"plugin 'wrongtype': {hook} returned" in result.stderr


# -- plugin-load failures with machine-readable output ----------------------------------------


@pytest.mark.parametrize("output", ["json", "ndjson"])
def test_a_plugin_load_failure_is_reported_on_stdout(tmp_path: Path, output: str) -> None:
    write_module(tmp_path, "badmod", "raise RuntimeError('no network')\n")
    write_manifest(tmp_path / "t.yaml", [hello("a")])
    result = run_opus(tmp_path, "apply", "-f", "t.yaml", "-o", output, plugins=("badmod",))
    assert result.returncode == 2, result.stderr
    doc = json.loads(result.stdout.strip().splitlines()[-1])
    assert doc["exit_code"] == 2
    assert "cannot load plugin module 'badmod'" in doc.get("error", doc.get("message", ""))
    if output == "ndjson":
        assert doc["event"] == "error" and doc["schema"] == "opus.events/v1"
    else:
        assert doc["ok"] is False


# -- names of the builtins --------------------------------------------------------------------


def test_init_plugin_refuses_a_builtin_name(tmp_path: Path) -> None:
    result = invoke(tmp_path, "init-plugin", "builtin-state")
    assert result.returncode == 2, result.stderr
    assert "'builtin-state' is the name of a builtin plugin" in result.stderr
    assert not (tmp_path / "opus-builtin-state").exists()


def test_an_entry_point_named_like_a_builtin_is_refused_in_one_line(tmp_path: Path) -> None:
    dist = tmp_path / "opus_builtin_state-0.1.dist-info"
    dist.mkdir()
    metadata = "Metadata-Version: 2.1\nName: opus-builtin-state\nVersion: 0.1\n"
    (dist / "METADATA").write_text(metadata)
    (dist / "entry_points.txt").write_text("[opus]\nbuiltin-state = clashing\n")
    write_module(tmp_path, "clashing", "X = 1\n")
    result = run_opus(tmp_path, "plugins", plugins=())
    assert result.returncode == 2, result.stderr
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1 and "{" not in err, err
    assert "'builtin-state'" in err and "opus-builtin-state" in err
