"""opus.yaml / [tool.opus] defaults: command line > OPUS_* env > config file > default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers_cli import hello, invoke, run_opus, write_manifest


def settings(workdir: Path, *args: str, env: dict | None = None) -> dict:
    result = invoke(workdir, *args, "config", "-o", "json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["settings"]


def test_precedence_cli_over_env_over_config_over_default(tmp_path: Path) -> None:
    assert settings(tmp_path)["context"] == {
        "value": "default",
        "source": "default",
        "envvar": "OPUS_CONTEXT",
    }
    (tmp_path / "opus.yaml").write_text(
        "context: from-config\nparallelism: 3\nstate: memory://\ngroup_limits: {db: 2}\n"
    )
    got = settings(tmp_path)
    assert (got["context"]["value"], got["context"]["source"]) == ("from-config", "config file")
    assert got["parallelism"]["value"] == 3 and got["group_limits"]["value"] == ["db=2"]
    env = {"OPUS_CONTEXT": "from-env", "OPUS_PARALLELISM": "5"}
    got = settings(tmp_path, env=env)
    assert (got["context"]["value"], got["context"]["source"]) == ("from-env", "environment")
    assert got["parallelism"]["value"] == 5 and got["state"]["source"] == "config file"


def test_precedence_in_a_real_run(tmp_path: Path) -> None:
    write_manifest(tmp_path / "t.yaml", [hello("a")])
    (tmp_path / "opus.yaml").write_text(
        f"context: from-config\nstate: sqlite:///{tmp_path}/config.db\n"
    )

    def context_of(*args: str, env: dict | None = None) -> str:
        result = run_opus(tmp_path, "apply", "-f", "t.yaml", "-o", "json", *args, env=env)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)["context"]

    assert context_of() == "from-config"
    assert (tmp_path / "config.db").exists()
    env = {"OPUS_CONTEXT": "from-env", "OPUS_STATE": f"sqlite:///{tmp_path}/env.db"}
    assert context_of(env=env) == "from-env"
    assert (tmp_path / "env.db").exists()
    assert context_of("--context", "from-cli", env=env) == "from-cli"


def test_pyproject_tool_section_and_values_files(tmp_path: Path) -> None:
    write_manifest(tmp_path / "t.yaml", [hello("a", "${VAR:greeting}")])
    (tmp_path / "values.yaml").write_text("greeting: from values\n")
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.opus]\nstate = "memory://"\nvalues = ["values.yaml"]\n'
        "keep-going = true\n"
    )
    got = settings(tmp_path)
    assert [Path(v).name for v in got["values"]["value"]] == ["values.yaml"]
    assert got["keep_going"]["value"] is True
    result = invoke(tmp_path, "apply", "-f", "t.yaml", "-o", "json")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "a.txt").read_text() == "from values"


def test_config_disables_plugins_unless_the_command_line_says(tmp_path: Path) -> None:
    (tmp_path / "opus.yaml").write_text("disable_plugins: [hello_world]\n")
    data = json.loads(invoke(tmp_path, "plugins", "-o", "json").stdout)
    assert "hello-world/v1" not in data["processors"] and "hello_world" in data["disabled"]
    data = json.loads(invoke(tmp_path, "--disable-plugin", "file", "plugins", "-o", "json").stdout)
    assert "hello-world/v1" in data["processors"] and data["disabled"] == ["file"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("paralelism: 3\n", "opus.yaml: unknown key 'paralelism' (did you mean 'parallelism'?"),
        (
            "parallelism: lots\n",
            "opus.yaml: key 'parallelism': expected an integer >= 1, got 'lots'",
        ),
        ("group_limits: [db]\n", "opus.yaml: key 'group_limits': expected a mapping"),
        ("state: [1\n", "opus.yaml:2: invalid YAML"),
        ("- a\n", "opus.yaml: expected a mapping of settings, got list"),
    ],
)
def test_bad_config_is_one_line_naming_file_and_key_exit_2(
    tmp_path: Path, text: str, message: str
) -> None:
    write_manifest(tmp_path / "t.yaml", [hello("a")])
    (tmp_path / "opus.yaml").write_text(text)
    result = run_opus(tmp_path, "apply", "-f", "t.yaml")
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / ".opus").exists()


def test_explicit_config_file_option_and_env(tmp_path: Path) -> None:
    (tmp_path / "team.yaml").write_text("context: team\n")
    assert settings(tmp_path, "--config", "team.yaml")["context"]["value"] == "team"
    assert settings(tmp_path, env={"OPUS_CONFIG": "team.yaml"})["context"]["value"] == "team"
    missing = invoke(tmp_path, "--config", "nope.yaml", "config")
    assert missing.returncode == 2 and "nope.yaml: config file not found" in missing.stderr


def test_env_lists_and_flags(tmp_path: Path) -> None:
    import os

    env = {
        "OPUS_VALUES": os.pathsep.join(["a.yaml", "b.yaml"]),
        "OPUS_GROUP_LIMITS": "db=1 web=4",
        "OPUS_KEEP_GOING": "1",
        "OPUS_PROGRESS": "0",
    }
    got = settings(tmp_path, env=env)
    assert got["values"]["value"] == ["a.yaml", "b.yaml"]
    assert got["group_limits"]["value"] == ["db=1", "web=4"]
    assert got["keep_going"]["value"] is True and got["progress"]["value"] is False
    assert {got[k]["source"] for k in ("values", "group_limits", "keep_going")} == {"environment"}
    cli = invoke(tmp_path, "config", "--command", "plan", env=env)
    assert "keep_going    true  (environment; env OPUS_KEEP_GOING)" in cli.stdout.splitlines()
