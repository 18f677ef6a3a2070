"""``opus output`` and ``opus import`` (and ``Engine.import_task``): real plugin packages
(hello-world, file/v1), a plugin module written for the test, real files, SQLite state."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from helpers_cli import TESTS_DIR, run_opus, write_manifest

from opus import Engine, OpusError, Plugins

SECRET_PLUGIN = """
from opus import Result, TaskProcessor, hookimpl

class Kept(TaskProcessor):
    # update does what create does; nothing to delete or undo
    def update(self, task, ctx):
        return self.create(task, ctx)

    def delete(self, task, ctx):
        return None

    def rollback(self, task, ctx):
        return None

class Token(Kept):
    api_version = "token/v1"
    sensitive_outputs = ("token",)

    def create(self, task, ctx):
        return Result(outputs={"token": "s3cret-" + ctx.spec["user"], "user": ctx.spec["user"]})

class ReadableToken(Token):
    api_version = "readable-token/v1"

    def read(self, task, ctx):
        return self.create(task, ctx)

class Vault(Kept):
    api_version = "vault/v1"
    sensitive_outputs = ("token", "pin", "keys")

    def create(self, task, ctx):
        user = ctx.spec["user"]
        return Result(outputs={"token": f"tok'{user} x/y", "pin": 987654321 + len(user),
                               "keys": [f"key-{user}-1"], "user": user})

class Echo(Kept):
    # with "fail" it raises with the spec in its message
    api_version = "echo/v1"

    def create(self, task, ctx):
        if ctx.spec.get("fail"):
            raise RuntimeError(f"boom: {dict(ctx.spec)!r}")
        return {}

@hookimpl
def opus_register_processors():
    return [Token, ReadableToken, Vault, Echo]
"""


def hello(name: str, path: Path, content: str) -> dict[str, Any]:
    return {"apiVersion": "hello-world/v1", "kind": "HelloWorld", "metadata": {"name": name},
            "spec": {"path": str(path), "content": content}}  # fmt: skip


def opus(tmp_path: Path, *args: str) -> Any:
    (tmp_path / "secret_plugin.py").write_text(SECRET_PLUGIN)
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), str(TESTS_DIR)])}
    return run_opus(tmp_path, *args, plugins=("secret_plugin",), env=env)


# -- output ------------------------------------------------------------------------------------


def test_output_prints_recorded_outputs_and_masks_sensitive_ones(tmp_path) -> None:
    token = {"apiVersion": "token/v1", "kind": "Token", "metadata": {"name": "tok"},
             "spec": {"user": "ann"}}  # fmt: skip
    manifest = write_manifest(tmp_path / "t.yaml", [token, hello("a", tmp_path / "a.txt", "A")])
    assert opus(tmp_path, "apply", "-f", str(manifest), "--context", "dev").returncode == 0

    shown = opus(tmp_path, "output", "tok", "--context", "dev")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == ["token = ***", "user = ann"]
    assert "s3cret" not in shown.stdout
    revealed = opus(tmp_path, "output", "tok", "token", "--context", "dev", "--show-sensitive")
    assert revealed.stdout == "s3cret-ann\n"
    as_json = opus(tmp_path, "output", "a", "--context", "dev", "-o", "json")
    outputs = json.loads(as_json.stdout)
    assert outputs["path"] == str(tmp_path / "a.txt") and outputs["size"] == 1
    one = opus(tmp_path, "output", "a", "size", "--context", "dev", "-o", "json")
    assert json.loads(one.stdout) == 1

    unknown_task = opus(tmp_path, "output", "tk", "--context", "dev")
    assert unknown_task.returncode == 2
    assert "no task 'tk' is recorded in context 'dev'; did you mean 'tok'?" in unknown_task.stderr
    unknown_key = opus(tmp_path, "output", "a", "sha", "--context", "dev")
    assert unknown_key.returncode == 2
    assert "has no output 'sha' (it has: path, sha256, size); did you mean 'sha256'?" in (
        unknown_key.stderr
    )
    # without the plugin that made it, nobody can tell which outputs are secret: all masked
    unknown_processor = run_opus(tmp_path, "output", "tok", "--context", "dev", plugins=())
    assert unknown_processor.stdout.splitlines() == ["token = ***", "user = ***"]
    other_context = opus(tmp_path, "output", "a")
    assert other_context.returncode == 2 and "context 'default'" in other_context.stderr


def test_sensitive_outputs_are_masked_wherever_the_cli_prints_outputs(tmp_path) -> None:
    """apply -o json/ndjson, state show, state list -o json and import print *** for an
    output the processor marks sensitive; opus output and state --show-sensitive show it."""
    token = {"apiVersion": "token/v1", "kind": "Token", "metadata": {"name": "tok"},
             "spec": {"user": "ann"}}  # fmt: skip
    manifest = write_manifest(tmp_path / "t.yaml", [token, hello("a", tmp_path / "a.txt", "A")])
    applied = opus(tmp_path, "apply", "-f", str(manifest), "-o", "json")
    assert applied.returncode == 0, applied.stderr
    tasks = json.loads(applied.stdout)["tasks"]
    assert tasks["tok"]["outputs"] == {"token": "***", "user": "ann"}
    assert tasks["a"]["outputs"]["size"] == 1, "outputs nobody marks sensitive are shown"
    again = opus(tmp_path, "apply", "-f", str(manifest), "-o", "ndjson")
    events = [json.loads(line) for line in again.stdout.splitlines()]
    done = [e for e in events if e["event"] == "task_done" and e["task"] == "tok"]
    assert done and done[0]["outputs"] == {"token": "***", "user": "ann"}
    for args in (("state", "show", "tok"), ("state", "show", "tok", "-o", "json"),
                 ("state", "list", "-o", "json")):  # fmt: skip
        shown = opus(tmp_path, *args)
        assert shown.returncode == 0, shown.stderr
        assert "s3cret" not in shown.stdout and "***" in shown.stdout, args
    record = json.loads(opus(tmp_path, "state", "show", "tok", "-o", "json").stdout)
    assert record["outputs"] == {"token": "***", "user": "ann"}
    revealed = opus(tmp_path, "state", "show", "tok", "-o", "json", "--show-sensitive")
    assert json.loads(revealed.stdout)["outputs"]["token"] == "s3cret-ann"
    listed = opus(tmp_path, "state", "list", "-o", "json", "--show-sensitive")
    assert "s3cret-ann" in listed.stdout
    assert "s3cret" not in opus(tmp_path, "plan", "-f", str(manifest), "-o", "json").stdout

    readable = {**token, "apiVersion": "readable-token/v1", "metadata": {"name": "found"}}
    manifest = write_manifest(tmp_path / "t.yaml", [token, readable])
    imported = opus(tmp_path, "import", "found", "-f", str(manifest))
    assert imported.returncode == 0, imported.stderr
    assert "  token = ***" in imported.stdout.splitlines() and "s3cret" not in imported.stdout
    assert opus(tmp_path, "state", "rm", "found", "--yes").returncode == 0
    imported = opus(tmp_path, "import", "found", "-f", str(manifest), "-o", "json")
    assert json.loads(imported.stdout)["tasks"]["found"]["outputs"]["token"] == "***"


# -- import ------------------------------------------------------------------------------------


def test_import_round_trip_through_the_cli(tmp_path) -> None:
    existing = tmp_path / "by-hand.txt"
    existing.write_text("made by hand")
    manifest = write_manifest(tmp_path / "t.yaml", [hello("a", existing, "made by hand")])

    imported = run_opus(tmp_path, "import", "a", "-f", str(manifest), plugins=())
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.startswith("imported a into context default")
    applied = run_opus(tmp_path, "apply", "-f", str(manifest), "-o", "json", plugins=())
    assert json.loads(applied.stdout)["tasks"]["a"]["status"] == "unchanged"
    output = run_opus(tmp_path, "output", "a", "size", plugins=())
    assert output.stdout == "12\n"
    drift = run_opus(tmp_path, "drift", "-f", str(manifest), "-o", "json", plugins=())
    assert drift.returncode == 0 and json.loads(drift.stdout)["tasks"]["a"]["drifted"] is False
    history = run_opus(tmp_path, "state", "history", "a", "-o", "json", plugins=())
    assert [h["action"] for h in json.loads(history.stdout)][-1:] == ["import"]

    again = run_opus(tmp_path, "import", "a", "-f", str(manifest), plugins=())
    assert again.returncode == 2 and "already in state" in again.stderr
    assert existing.read_text() == "made by hand"


def test_import_reads_variables_like_the_run_commands(tmp_path) -> None:
    # the same -f/--context/--var/--values options as apply, OPUS_VALUES included
    (tmp_path / "a.txt").write_text("from values")
    manifest = write_manifest(
        tmp_path / "t.yaml", [hello("a", tmp_path / "a.txt", "${VAR:greeting}")]
    )
    (tmp_path / "values.yaml").write_text("greeting: from values\n")
    env = {"OPUS_VALUES": str(tmp_path / "values.yaml")}
    imported = run_opus(tmp_path, "import", "a", "-f", str(manifest), plugins=(), env=env)
    assert imported.returncode == 0, imported.stderr
    applied = run_opus(tmp_path, "apply", "-f", str(manifest), "-o", "json", plugins=(), env=env)
    assert json.loads(applied.stdout)["tasks"]["a"]["status"] == "unchanged"


def test_import_refuses_what_is_missing_or_differs(tmp_path) -> None:
    manifest = write_manifest(tmp_path / "t.yaml", [hello("a", tmp_path / "a.txt", "A")])
    missing = run_opus(tmp_path, "import", "a", "-f", str(manifest), plugins=())
    assert missing.returncode == 2 and "nothing to import" in missing.stderr
    (tmp_path / "a.txt").write_text("other")
    differs = run_opus(tmp_path, "import", "a", "-f", str(manifest), plugins=())
    assert differs.returncode == 2 and "differs from the manifest" in differs.stderr
    typo = run_opus(tmp_path, "import", "b", "-f", str(manifest), plugins=())
    assert typo.returncode == 2 and "no task 'b' in the manifests (they have: a)" in (typo.stderr)
    close = run_opus(tmp_path, "import", "aa", "-f", str(manifest), plugins=())
    assert "no task 'aa' in the manifests; did you mean 'a'?" in close.stderr
    listed = run_opus(tmp_path, "state", "list", "-o", "json", plugins=())
    assert json.loads(listed.stdout) == [], "nothing was recorded"


def test_import_needs_a_read_action(tmp_path) -> None:
    token = {"apiVersion": "token/v1", "kind": "Token", "metadata": {"name": "tok"},
             "spec": {"user": "ann"}}  # fmt: skip
    manifest = write_manifest(tmp_path / "t.yaml", [token])
    refused = opus(tmp_path, "import", "tok", "-f", str(manifest))
    assert refused.returncode == 2
    assert "processor Token (token/v1) cannot import: it has no 'read' action" in refused.stderr


def test_file_v1_import_through_the_library(tmp_path) -> None:
    path = tmp_path / "conf.ini"
    path.write_text("[a]\nx = 1\n")
    path.chmod(0o640)
    task = {"apiVersion": "file/v1", "kind": "File", "metadata": {"name": "conf"},
            "spec": {"path": str(path), "content": "[a]\nx = 1\n", "mode": "0640"}}  # fmt: skip
    with Engine(state=f"sqlite:///{tmp_path}/s.db", plugins=Plugins()) as engine:
        outcome = engine.import_task("conf", [task])
        assert outcome.status == "done" and outcome.outputs["path"] == str(path)
        record = engine.state.get("default", "conf")
        assert record is not None and record.applied_spec == task["spec"]
        result = engine.run("apply", [task])
        assert result.tasks["conf"].status == "unchanged"
        path.chmod(0o600)
        assert engine.run("apply", [task]).tasks["conf"].action == "update", "drift repaired"
        assert path.stat().st_mode & 0o777 == 0o640
        with pytest.raises(OpusError, match="already in state"):
            engine.import_task("conf", [task])
        other = tmp_path / "other.ini"
        other.write_text("by hand")
        other.chmod(0o600)
        mismatch = {"apiVersion": "file/v1", "kind": "File", "metadata": {"name": "other"},
                    "spec": {"path": str(other), "content": "by hand", "mode": "0644"}}  # fmt: skip
        with pytest.raises(OpusError, match=r"differs from the manifest \(mode of"):
            engine.import_task("other", [mismatch])
        assert engine.state.get("default", "other") is None


def test_outputs_of_a_processor_that_cannot_be_made_are_all_masked() -> None:
    from opus import TaskProcessor
    from opus.outputs import masked_outputs

    class Broken(TaskProcessor):
        api_version = "broken/v1"
        sensitive_outputs = ("token",)

        def __init__(self) -> None:
            raise RuntimeError("no config")

    plugins = Plugins(entry_points=False)
    plugins.register_processor(Broken)
    registry = plugins.processors()
    assert masked_outputs("broken/v1", {"token": "t", "user": "u"}, registry) == {
        "token": "***",
        "user": "***",
    }


def test_a_value_made_from_a_sensitive_output_is_masked_where_it_is_shown(tmp_path) -> None:
    """Task a's content refers to tok's sensitive output: the file gets the real value,
    plans, describe, drift and the state commands show ***; a plan across a change of tok
    still refreshes a from what was applied."""
    token = {"apiVersion": "token/v1", "kind": "Token", "metadata": {"name": "tok"},
             "spec": {"user": "ann"}}  # fmt: skip
    uses = hello("a", tmp_path / "a.txt", "key=${VAR:tok:token};")
    whole = hello("w", tmp_path / "w.txt", "${VAR:tok:token}")
    manifest = write_manifest(tmp_path / "t.yaml", [token, uses, whole])
    assert opus(tmp_path, "apply", "-f", str(manifest)).returncode == 0
    assert (tmp_path / "a.txt").read_text() == "key=s3cret-ann;"

    shown = {
        "state show": opus(tmp_path, "state", "show", "a"),
        "state show -o json": opus(tmp_path, "state", "show", "a", "-o", "json"),
        "state list -o json": opus(tmp_path, "state", "list", "-o", "json"),
        "describe -o json": opus(tmp_path, "describe", "-f", str(manifest), "-o", "json"),
        "describe -o ndjson": opus(tmp_path, "describe", "-f", str(manifest), "-o", "ndjson"),
    }
    for what, result in shown.items():
        assert result.returncode == 0, (what, result.stderr)
        assert "s3cret" not in result.stdout and "***" in result.stdout, what
    record = json.loads(shown["state show -o json"].stdout)
    assert record["applied_spec"]["content"] == "key=***;"
    described = json.loads(shown["describe -o json"].stdout)["tasks"]
    assert described["tok"]["details"]["state"]["outputs"]["token"] == "***"
    assert described["a"]["details"]["state"]["applied_spec"]["content"] == "key=***;"
    revealed = opus(tmp_path, "state", "show", "a", "-o", "json", "--show-sensitive")
    assert json.loads(revealed.stdout)["applied_spec"]["content"] == "key=s3cret-ann;"

    token["spec"] = {"user": "bob"}
    uses["spec"]["path"] = str(tmp_path / "b.txt")  # a changes in place too
    write_manifest(tmp_path / "t.yaml", [token, uses, whole])
    planned = opus(tmp_path, "plan", "-f", str(manifest))
    assert planned.returncode == 3, planned.stdout + planned.stderr
    assert '      ~ content: "key=***;" -> (known after apply)' in planned.stdout.splitlines()
    assert '      ~ content: "***" -> (known after apply)' in planned.stdout.splitlines()
    for args in (("-o", "json"), ("-o", "markdown")):
        other = opus(tmp_path, "plan", "-f", str(manifest), *args)
        assert other.returncode == 3 and "s3cret" not in other.stdout, args
    drift = opus(tmp_path, "drift", "-f", str(manifest), "-o", "json")
    assert json.loads(drift.stdout)["tasks"]["a"]["spec_drift"] is True
    assert "s3cret" not in drift.stdout
    assert opus(tmp_path, "apply", "-f", str(manifest), "--yes").returncode == 0
    assert (tmp_path / "b.txt").read_text() == "key=s3cret-bob;"
    again = opus(tmp_path, "plan", "-f", str(manifest))
    assert again.returncode == 0, again.stdout


def test_every_form_of_a_referenced_secret_is_masked_and_old_values_too(tmp_path) -> None:
    """Whole-value references whatever they held, numbers and lists inside text, the form
    shell/v1 quotes a value into, and error messages."""
    vault = {"apiVersion": "vault/v1", "kind": "Vault", "metadata": {"name": "v"},
             "spec": {"user": "ann"}}  # fmt: skip
    uses = {"apiVersion": "shell/v1", "kind": "Shell", "metadata": {"name": "s"},
            "spec": {"create": "echo '${VAR:v:user}' >> used.txt",
                     "env": {"TOKEN": "${VAR:v:token}", "NOTE": "pin ${VAR:v:pin} ${VAR:v:keys}"},
                     "delete": "test ${VAR:v:token} = never"}}  # fmt: skip
    manifest = write_manifest(tmp_path / "t.yaml", [vault, uses])
    applied = opus(tmp_path, "apply", "-f", str(manifest))
    assert applied.returncode == 0, applied.stderr
    secrets = ("tok'ann", "987654324", "key-ann-1")
    shown = opus(tmp_path, "state", "show", "s", "-o", "json")
    assert not any(s in shown.stdout for s in secrets), shown.stdout

    vault["spec"] = {"user": "bob"}  # the secret changes; s changes too
    uses["spec"]["create"] = "echo '${VAR:v:user}' > used.txt"
    write_manifest(tmp_path / "t.yaml", [vault, uses])
    assert opus(tmp_path, "apply", "-f", str(manifest), "--target", "v").returncode == 0
    planned = opus(tmp_path, "plan", "-f", str(manifest), "-o", "json")
    assert planned.returncode == 3, planned.stderr
    assert not any(s in planned.stdout for s in (*secrets, "tok'bob")), planned.stdout
    described = opus(tmp_path, "describe", "-f", str(manifest), "-o", "json")
    assert not any(s in described.stdout for s in (*secrets, "tok'bob")), described.stdout

    # a delete whose command fails: its error quotes the command, secret included
    deleted = opus(tmp_path, "delete", "-f", str(manifest), "--target", "s", "--yes", "-o", "json")
    assert deleted.returncode == 1
    error = json.loads(deleted.stdout)["tasks"]["s"]["error"]
    assert "exited 1" in error and "***" in error and "x/y" not in error, error


def test_a_processor_is_told_the_secrets_its_spec_holds(tmp_path) -> None:
    """ctx.secrets: shell/v1 masks another task's sensitive output in its outputs, logs
    and errors as it masks its own sensitive env."""
    vault = {"apiVersion": "vault/v1", "kind": "Vault", "metadata": {"name": "v"},
             "spec": {"user": "ann"}}  # fmt: skip
    echo = {"apiVersion": "shell/v1", "kind": "Shell", "metadata": {"name": "e"},
            "spec": {"create": "echo got ${VAR:v:token}; echo TOKEN=\"$T\"",
                     "env": {"T": "${VAR:v:token}"}}}  # fmt: skip
    manifest = write_manifest(tmp_path / "t.yaml", [vault, echo])
    done = opus(tmp_path, "-v", "apply", "-f", str(manifest), "-o", "json")
    assert done.returncode == 0, done.stderr
    outputs = json.loads(done.stdout)["tasks"]["e"]["outputs"]
    assert outputs["stdout"] == "got ***\nTOKEN=***" and outputs["TOKEN"] == "***"
    assert "tok'ann" not in done.stderr and "running echo got" in done.stderr


def test_orphans_processor_messages_and_import_refusals_mask_referenced_secrets(
    tmp_path,
) -> None:
    """A pruned orphan's delete is told the secret and its error masks it; describe,
    drift and plan mask it in what the processor reports; so does an import refusal."""
    token = {"apiVersion": "token/v1", "kind": "Token", "metadata": {"name": "tok"},
             "spec": {"user": "ann"}}  # fmt: skip
    named = hello("f", tmp_path / "f-${VAR:tok:token}.txt", "x")
    gone = {"apiVersion": "shell/v1", "kind": "Shell", "metadata": {"name": "g"},
            "spec": {"create": "true", "delete": "echo bye ${VAR:tok:token}; exit 3"}}  # fmt: skip
    manifest = write_manifest(tmp_path / "t.yaml", [token, named, gone])
    assert opus(tmp_path, "apply", "-f", str(manifest)).returncode == 0
    (tmp_path / "f-s3cret-ann.txt").unlink()  # f's file goes: drift and plan say why

    # (f's own "path" output holds it too: a processor's outputs are its to mask)
    for command in ("describe", "drift"):
        shown = opus(tmp_path, command, "-f", str(manifest), "-o", "json")
        details = json.dumps(json.loads(shown.stdout)["tasks"]["f"]["details"])
        assert "f-***.txt" in details and "s3cret" not in details, command
    for command in ("drift", "plan"):  # the text views print no outputs
        shown = opus(tmp_path, command, "-f", str(manifest))
        assert "f-***.txt" in shown.stdout, command
        assert "s3cret" not in shown.stdout + shown.stderr, command

    write_manifest(tmp_path / "t.yaml", [token, named])  # g is an orphan now
    pruned = opus(tmp_path, "-v", "apply", "-f", str(manifest), "--prune", "--yes", "-o", "json")
    assert pruned.returncode == 1, pruned.stderr
    error = json.loads(pruned.stdout)["tasks"]["g"]["error"]
    assert "delete command exited 3" in error and "bye ***" in error, error
    assert "s3cret" not in pruned.stdout + pruned.stderr

    assert opus(tmp_path, "state", "rm", "f", "--yes").returncode == 0
    refused = opus(tmp_path, "import", "f", "-f", str(manifest))
    assert refused.returncode == 2 and "f-***.txt" in refused.stderr, refused.stderr
    assert "s3cret" not in refused.stderr


def test_list_and_number_secrets_and_a_literal_replaced_by_a_reference(tmp_path) -> None:
    """A list's items and a number are masked (state show, errors); a literal that a
    reference replaced is no secret: it is not masked in what the task outputs."""
    vault = {"apiVersion": "vault/v1", "kind": "Vault", "metadata": {"name": "v"},
             "spec": {"user": "ann"}}  # fmt: skip
    echo = {"apiVersion": "echo/v1", "kind": "Echo", "metadata": {"name": "e"},
            "spec": {"w": "${VAR:v:keys}", "n": "${VAR:v:pin}"}}  # fmt: skip
    shell = {"apiVersion": "shell/v1", "kind": "Shell", "metadata": {"name": "c"},
             "spec": {"create": "echo user admin ready", "env": {"API_USER": "admin"}}}  # fmt: skip
    manifest = write_manifest(tmp_path / "t.yaml", [vault, echo, shell])
    assert opus(tmp_path, "apply", "-f", str(manifest)).returncode == 0
    shown = opus(tmp_path, "state", "show", "e", "-o", "json")
    assert json.loads(shown.stdout)["applied_spec"] == {"w": ["***"], "n": "***"}

    echo["spec"]["fail"] = True
    shell["spec"]["env"] = {"API_USER": "${VAR:v:token}"}
    write_manifest(tmp_path / "t.yaml", [vault, echo, shell])
    done = opus(tmp_path, "apply", "-f", str(manifest), "--keep-going", "-o", "json")
    tasks = json.loads(done.stdout)["tasks"]
    assert "boom" in tasks["e"]["error"], tasks["e"]
    assert "key-ann-1" not in tasks["e"]["error"] and "987654324" not in tasks["e"]["error"]
    assert tasks["c"]["outputs"]["stdout"] == "user admin ready"
