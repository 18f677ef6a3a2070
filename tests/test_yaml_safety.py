"""YAML: the same errors and lines from libyaml's loader and the pure-Python one, and alias
bombs refused at once in manifests, values files, --var and config files."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from opus import ConfigError, ManifestError
from opus.manifest import collect_file
from opus.variables import load_values, parse_assignments
from opus.yamlsafe import MAX_ALIAS_NODES, FastLoader, YamlProblem, documents, load

LOADERS = [pytest.param(yaml.SafeLoader, id="python"), pytest.param(FastLoader, id="opus-fast")]
if hasattr(yaml, "CSafeLoader"):
    LOADERS.append(pytest.param(yaml.CSafeLoader, id="libyaml"))
else:  # pragma: no cover
    LOADERS.append(
        pytest.param(
            None, id="libyaml", marks=pytest.mark.skip(reason="PyYAML built without libyaml")
        )
    )


def bomb(levels: int = 9) -> str:
    """A "billion laughs" task manifest: 9 levels of 9 aliases, about 440 bytes."""
    lines = ["apiVersion: hello-world/v1", "kind: HelloWorld", "metadata: {name: bomb}", "spec:"]
    lines.append('  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]')
    names = "abcdefghijklmnop"
    for prev, name in zip(names, names[1:levels], strict=False):
        lines.append(f"  {name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


BROKEN = {
    "tab": "apiVersion: v1\nkind: K\nmetadata:\n\tname: x\n",
    "unclosed": "apiVersion: v1\nkind: K\nspec: {a: [1, 2}\n",
    "colon": "apiVersion: v1\nkind: K\nspec:\n  a: b: c\n",
    "alias": "apiVersion: v1\nkind: K\nspec: *nowhere\n",
    "second-doc": "apiVersion: v1\nkind: K\nmetadata: {name: a}\n---\n- [\n",
    "escape": 'apiVersion: v1\nkind: K\nspec: {a: "\\x"}\n',
    "anchor-twice": "apiVersion: v1\nkind: K\nspec: {a: &x 1, b: &x 2}\n",
    "python-tag": "apiVersion: v1\nkind: K\nspec: !!python/object:os.system {}\n",
    "control-char": "apiVersion: v1\nkind: K\nspec: {a: \x07}\n",
}


@pytest.mark.parametrize("loader", LOADERS)
def test_both_loaders_give_the_same_errors_and_lines(tmp_path: Path, loader: type) -> None:
    for name, text in BROKEN.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        _, problems = collect_file(path, loader)
        _, reference = collect_file(path, yaml.SafeLoader)
        assert len(problems) == 1 and isinstance(problems[0], ManifestError)
        error, expected = problems[0], reference[0]
        assert isinstance(expected, ManifestError)
        assert (error.file, error.line) == (expected.file, expected.line), name
        assert expected.line is not None and expected.line > 1, name
        assert str(error).startswith(f"{path}:{expected.line}: invalid YAML: "), name
        assert str(error) == str(expected), name  # PyYAML's words, whichever loader read it


def test_pyyaml_words_name_the_culprit(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    for name, words in [
        ("tab", "found character '\\t' that cannot start any token"),
        ("alias", "found undefined alias 'nowhere'"),
        ("control-char", "unacceptable character #x0007: special characters are not allowed"),
    ]:
        path.write_text(BROKEN[name])
        _, problems = collect_file(path)
        assert len(problems) == 1 and str(problems[0]).endswith(words), (name, problems)


@pytest.mark.parametrize("loader", LOADERS)
def test_what_pyyaml_reads_is_read_whichever_loader(loader: type) -> None:
    # libyaml refuses a byte-order mark inside a stream; PyYAML reads it as part of the key
    text = "a: 1\n\ufeffb: 2\n---\nc: 3\n"
    assert list(documents(text, loader)) == list(documents(text, yaml.SafeLoader))
    assert list(documents(text, loader)) == [(1, {"a": 1, "\ufeffb": 2}), (4, {"c": 3})]
    assert load("a: 1\n\ufeffb: 2\n", loader) == {"a": 1, "\ufeffb": 2}


@pytest.mark.usefixtures("yaml_loader")
def test_cli_reports_the_same_yaml_errors_with_either_loader(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from opus.cli import cli
    from opus.cli.session import Session

    (tmp_path / "t.yaml").write_text(BROKEN["unclosed"])
    (tmp_path / "v.yaml").write_text("dev: {a: [1}\n")
    for args, expected in [
        ([], "t.yaml:3: invalid YAML: expected ',' or ']', but got '}'"),
        (["--values", str(tmp_path / "v.yaml"), "--context", "dev"], "v.yaml:1: invalid YAML"),
    ]:
        (tmp_path / "t.yaml").write_text(BROKEN["unclosed"] if not args else "[]\n")
        argv = ["apply", "-f", str(tmp_path / "t.yaml"), "--state", "memory://", *args]
        result = CliRunner().invoke(cli, argv, obj=Session(), catch_exceptions=False)
        assert result.exit_code == 2, result.output
        assert expected in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("loader", LOADERS)
def test_both_loaders_read_documents_and_lines_alike(tmp_path: Path, loader: type) -> None:
    text = "a: 1\n---\n\n# comment\nb: &x [1, 2]\nc: *x\n---\n---\n- 1\n"
    expected = [(1, {"a": 1}), (5, {"b": [1, 2], "c": [1, 2]}), (8, None), (9, [1])]
    assert list(documents(text, loader)) == expected


@pytest.mark.parametrize("loader", LOADERS)
def test_an_alias_bomb_is_refused_at_once(tmp_path: Path, loader: type) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(bomb())
    assert len(path.read_bytes()) < 460
    start = time.perf_counter()
    tasks, problems = collect_file(path, loader)
    elapsed = time.perf_counter() - start
    assert tasks == [] and len(problems) == 1
    assert elapsed < 0.5, f"took {elapsed:.2f}s"
    message = str(problems[0])
    assert message.startswith(f"{path}:")
    assert f"aliases expand this document beyond {MAX_ALIAS_NODES} extra nodes" in message


@pytest.mark.usefixtures("yaml_loader")
def test_ordinary_aliases_still_work() -> None:
    text = "defaults: &d {retries: 2, timeout: 5}\nfirst: *d\nsecond: {<<: *d, timeout: 9}\n"
    data = load(text)
    assert data["first"] == {"retries": 2, "timeout": 5}
    assert data["second"] == {"retries": 2, "timeout": 9}


@pytest.mark.usefixtures("yaml_loader")
def test_a_recursive_alias_is_refused() -> None:
    with pytest.raises(YamlProblem, match="recursive alias"):
        load("a: &a [1, *a]\n")


@pytest.mark.usefixtures("yaml_loader")
def test_values_files_var_and_config_refuse_bombs(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(bomb().split("spec:\n", 1)[1].replace("\n  ", "\n").lstrip())
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=r"values.yaml:\d+: invalid YAML: aliases expand"):
        load_values(str(values), "dev")
    # --var values are YAML too; a bomb stays the literal text it is
    text = "[" + ",".join(["*a"] * 2) + "]"
    assert parse_assignments(["x=" + text]) == {"x": text}
    assert time.perf_counter() - start < 1
    from opus.cli.config import load_config

    (tmp_path / "opus.yaml").write_text(values.read_text())
    with pytest.raises(ConfigError, match="invalid YAML: aliases expand"):
        load_config(tmp_path / "opus.yaml")
