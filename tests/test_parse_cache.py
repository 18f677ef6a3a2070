"""The manifest parse cache: same tasks, lines and errors as a fresh parse; never stale,
private, bounded, and ignored when corrupt."""

from __future__ import annotations

import json
import math
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers_cli import hello, invoke, json_out, run_opus, statuses, write_manifest

from opus import ManifestError, ValidationErrors, yamlsafe
from opus import manifest as manifest_module
from opus.manifest import collect_tasks, load_tasks
from opus.parsecache import ParseCache, default_directory, from_settings

#: In-process tests run once with each YAML loader opus may use.
loaders = pytest.mark.usefixtures("yaml_loader")

RICH = (
    "apiVersion: x/v1\r\nkind: K\r\nmetadata: {name: a, labels: {tier: web}}\r\n"
    "spec:\r\n  base: &base {image: nginx, ports: [80, 443], ratio: .5}\r\n"
    "  again: *base\r\n  blob: !!binary aGVsbG8=\r\n  tags: !!set {x, y}\r\n"
    "  ordered: !!omap [{one: 1}, {two: 2}]\r\n"
    "  keys: {1: one, 2.5: two, true: yes, null: none}\r\n"
    "  numbers: [0x1f, 0o17, 1_000, -.inf, .nan, 1e3, ~, 'quoted', \"dq\\u00e9\"]\r\n"
    "  text: |\r\n    two\r\n    lines\r\n"
    "---\r\n--- null\r\n---\rapiVersion: x/v1\rkind: K\rmetadata: {name: b}\r"
    "---\n- apiVersion: x/v1\n  kind: K\n  metadata: {name: c}\n  spec: {v: [1, {w: 2}]}\n"
)


def typed(value: Any) -> Any:
    """``value`` with every type spelled out (``==`` says 1 == 1.0 == True)."""
    if isinstance(value, dict):
        return ("dict", [(typed(k), typed(v)) for k, v in value.items()])
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return (type(value).__name__, [typed(v) for v in items])
    if isinstance(value, float) and math.isnan(value):
        return ("float", "nan")
    return (type(value).__name__, value)


def shape(tasks: list[Any]) -> list[Any]:
    return [
        (t.api_version, t.kind, typed(dict(t.metadata)), typed(dict(t.spec)), t.source)
        for t in tasks
    ]


def write_manifests(directory: Path, docs: list[dict[str, Any]]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    return write_manifest(directory / "tasks.yaml", docs)


def entries(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.bin")) if directory.is_dir() else []


@loaders
def test_a_hit_gives_the_same_tasks_types_and_lines(tmp_path, monkeypatch) -> None:
    path = tmp_path / "rich.yaml"
    path.write_bytes(RICH.encode())
    cache = ParseCache(tmp_path / "cache")
    fresh = load_tasks([path], cache=None)
    first = load_tasks([path], cache=cache)
    assert len(entries(cache.directory)) == 1
    monkeypatch.setattr(manifest_module, "documents", None)  # parsing now would fail
    second = load_tasks([path], cache=cache)
    assert [t.name for t in fresh] == ["a", "b", "c"]
    assert [t.source for t in fresh] == [f"{path}:1", f"{path}:18", f"{path}:22"]
    assert shape(first) == shape(fresh) and shape(second) == shape(fresh)
    spec = second[0].spec
    assert spec["again"] is spec["base"]  # an alias stays one shared object, as parsed
    assert spec["blob"] == b"hello" and spec["tags"] == {"x", "y"}
    assert spec["text"] == "two\nlines\n"


@loaders
def test_an_edited_file_is_parsed_again(tmp_path) -> None:
    cache = ParseCache(tmp_path / "cache")
    path = write_manifests(tmp_path, [hello("a")])
    assert [t.name for t in load_tasks([path], cache=cache)] == ["a"]
    write_manifests(tmp_path, [hello("a"), hello("b")])
    assert [t.name for t in load_tasks([path], cache=cache)] == ["a", "b"]
    assert len(entries(cache.directory)) == 2


@loaders
@pytest.mark.parametrize(
    "damage",
    [
        lambda blob: blob[: len(blob) // 2],
        lambda blob: blob[:-1] + bytes([blob[-1] ^ 1]),
        lambda blob: b"",
        lambda blob: b"garbage" * 10,
    ],
    ids=["truncated", "bit-flip", "empty", "garbage"],
)
def test_a_corrupt_entry_is_ignored_and_replaced(tmp_path, damage) -> None:
    cache = ParseCache(tmp_path / "cache")
    path = write_manifests(tmp_path, [hello("a", "one"), hello("b")])
    expected = shape(load_tasks([path], cache=None))
    load_tasks([path], cache=cache)
    (entry,) = entries(cache.directory)
    good = entry.read_bytes()
    entry.write_bytes(damage(good))
    assert shape(load_tasks([path], cache=cache)) == expected
    assert entry.read_bytes() == good  # parsed again and stored again


@loaders
def test_an_unreadable_entry_is_ignored(tmp_path) -> None:
    cache = ParseCache(tmp_path / "cache")
    path = write_manifests(tmp_path, [hello("a")])
    load_tasks([path], cache=cache)
    (entry,) = entries(cache.directory)
    entry.unlink()
    entry.mkdir()  # reading it fails with an OSError
    assert [t.name for t in load_tasks([path], cache=cache)] == ["a"]


@loaders
def test_invalid_yaml_is_never_cached_and_keeps_its_error(tmp_path) -> None:
    cache = ParseCache(tmp_path / "cache")
    path = tmp_path / "broken.yaml"
    path.write_text(
        "apiVersion: x/v1\nkind: K\nmetadata: {name: a}\n---\n"
        "apiVersion: x/v1\nkind: K\nmetadata: {name: b\n"
    )
    found = []
    for use in (None, cache, cache):
        tasks, problems = collect_tasks([path], cache=use)
        found.append(([t.name for t in tasks], [str(p) for p in problems]))
    assert found[0] == found[1] == found[2]
    assert found[0][0] == ["a"] and f"{path}:8" in found[0][1][0]
    assert "invalid YAML" in found[0][1][0]
    assert entries(cache.directory) == []


@loaders
def test_a_task_error_keeps_its_line_on_a_hit(tmp_path) -> None:
    cache = ParseCache(tmp_path / "cache")
    path = tmp_path / "t.yaml"
    path.write_text(
        "apiVersion: x/v1\nkind: K\nmetadata: {name: a}\n---\napiVersion: x/v1\nkind: K\n"
        "metadata: {name: b}\nspek: {}\n"
    )
    for use in (cache, cache):
        with pytest.raises(ManifestError) as err:
            load_tasks([path], cache=use)
        assert f"{path}:5" in str(err.value) and "unknown top-level key(s): spek" in str(err.value)
    assert len(entries(cache.directory)) == 1


@loaders
def test_data_marshal_cannot_hold_is_not_cached(tmp_path) -> None:
    cache = ParseCache(tmp_path / "cache")
    path = tmp_path / "t.yaml"
    path.write_text("apiVersion: x/v1\nkind: K\nmetadata: {name: a}\nspec: {when: 2024-01-02}\n")
    for _ in range(2):
        (task,) = load_tasks([path], cache=cache)
        assert str(task.spec["when"]) == "2024-01-02"
    assert entries(cache.directory) == []


def test_cache_files_are_private(tmp_path) -> None:
    cache = ParseCache(tmp_path / "deep" / "cache")
    load_tasks([write_manifests(tmp_path, [hello("a")])], cache=cache)
    (entry,) = entries(cache.directory)
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(cache.directory.parent.stat().st_mode) == 0o700


def test_a_directory_others_can_write_is_not_used(tmp_path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    cache = ParseCache(shared)
    path = write_manifests(tmp_path, [hello("a")])
    assert [t.name for t in load_tasks([path], cache=cache)] == ["a"]
    assert entries(shared) == []


def test_the_cache_is_pruned_to_its_bound(tmp_path) -> None:
    one = ParseCache(tmp_path / "probe")
    load_tasks([write_manifests(tmp_path / "p", [hello("t0")])], cache=one)
    size = entries(one.directory)[0].stat().st_size
    cache = ParseCache(tmp_path / "cache", max_bytes=size * 5)
    paths = []
    for i in range(12):
        paths.append(write_manifests(tmp_path / f"d{i}", [hello(f"t{i}")]))
        load_tasks([paths[-1]], cache=cache)
        if i == 0:  # used again and again: kept
            first = entries(cache.directory)[0]
        os.utime(first)
        assert sum(e.stat().st_size for e in entries(cache.directory)) <= size * 5
    kept = entries(cache.directory)
    assert first in kept and 2 <= len(kept) <= 5
    last = cache.key(paths[-1].read_bytes(), yamlsafe.SafeLoader, yamlsafe.MAX_ALIAS_NODES)
    assert cache.directory / f"{last}.bin" in kept  # the newest entry is kept too


def test_where_the_cache_lives(tmp_path) -> None:
    assert default_directory({"OPUS_CACHE_DIR": str(tmp_path / "x")}) == tmp_path / "x"
    assert default_directory({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "opus"
    home = default_directory({"XDG_CACHE_HOME": "relative"})  # ignored, as XDG says
    assert home == Path("~/.cache/opus").expanduser()
    assert from_settings(environ={"OPUS_NO_CACHE": "1"}) is None
    assert from_settings(environ={"OPUS_CACHE_DIR": "off"}) is None  # every cache off
    assert from_settings({"cache": False}, environ={}) is None
    cache = from_settings({"cache": False}, environ={"OPUS_NO_CACHE": "0", "XDG_CACHE_HOME": "/c"})
    assert cache is not None and cache.directory == Path("/c/opus/manifests")


def test_the_cli_caches_in_the_user_cache_dir_and_reads_it_back(tmp_path) -> None:
    write_manifests(tmp_path, [hello("a"), hello("b", "${VAR:a:path}")])
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    first = run_opus(tmp_path, "apply", "-f", "tasks.yaml", "--output", "json", env=env)
    assert first.returncode == 0, first.stderr
    cached = entries(tmp_path / "xdg" / "opus" / "manifests")
    assert len(cached) == 1
    second = run_opus(tmp_path, "plan", "-f", "tasks.yaml", "--output", "json", env=env)
    assert second.returncode == 0, second.stderr
    assert statuses(json_out(second)) == {"a": ("unchanged", None), "b": ("unchanged", None)}
    assert entries(tmp_path / "xdg" / "opus" / "manifests") == cached
    os.utime(cached[0], (1_000_000, 1_000_000))
    third = run_opus(tmp_path, "validate", "-f", "tasks.yaml", env=env)
    assert third.returncode == 0, third.stderr
    assert cached[0].stat().st_mtime > 1_000_000  # read (a hit marks it used)


@pytest.mark.parametrize(
    ("env", "config"),
    [({"OPUS_NO_CACHE": "1"}, None), ({}, "cache: false\n")],
    ids=["env", "config"],
)
def test_turned_off_the_cli_writes_no_cache(tmp_path, env, config) -> None:
    write_manifests(tmp_path, [hello("a")])
    if config:
        (tmp_path / "opus.yaml").write_text(config)
    cache_dir = tmp_path / "c"
    env = {**env, "OPUS_CACHE_DIR": str(cache_dir)}
    done = run_opus(tmp_path, "validate", "-f", "tasks.yaml", env=env)
    assert done.returncode == 0, done.stderr
    assert not cache_dir.exists()  # neither manifests nor compiled schemas: one switch


def test_opus_config_shows_the_cache_settings(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "opus.yaml").write_text("cache_dir: .cache\n")
    shown = invoke(tmp_path, "config", "--output", "json", env={"OPUS_NO_CACHE": "1"})
    assert shown.returncode == 0, shown.stderr
    settings = json.loads(shown.stdout)["settings"]
    assert settings["cache"] == {"value": False, "source": "environment", "envvar": "OPUS_NO_CACHE"}
    assert settings["cache_dir"] == {
        "value": str(tmp_path / ".cache"),
        "source": "config file",
        "envvar": "OPUS_CACHE_DIR",
    }


def test_a_config_cache_dir_is_used(tmp_path) -> None:
    write_manifests(tmp_path, [hello("a")])
    (tmp_path / "opus.yaml").write_text("cache_dir: my-cache\n")
    done = run_opus(tmp_path, "validate", "-f", "tasks.yaml")
    assert done.returncode == 0, done.stderr
    assert len(entries(tmp_path / "my-cache" / "manifests")) == 1
    assert list((tmp_path / "my-cache" / "schemas").iterdir())  # the same place for both


@loaders
def test_problems_from_a_cached_file_are_reported_together(tmp_path) -> None:
    cache = ParseCache(tmp_path / "cache")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "a.yaml").write_text("apiVersion: x/v1\nkind: K\nmetadata: {name: a}\n")
    (tmp_path / "m" / "b.yaml").write_text("kind: K\nmetadata: {name: b}\n---\n[\n")
    for _ in range(2):
        with pytest.raises(ValidationErrors) as err:
            load_tasks([tmp_path / "m"], cache=cache)
        text = str(err.value)
        assert "b.yaml:1" in text and "missing 'apiVersion'" in text and "b.yaml:5" in text
    assert len(entries(cache.directory)) == 1  # a.yaml only


def test_a_relative_cache_dir_is_relative_to_the_config_file(tmp_path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "opus.yaml").write_text("cache_dir: c\n")
    shown = invoke(tmp_path, "--config", "conf/opus.yaml", "config", "--output", "json")
    assert shown.returncode == 0, shown.stderr
    found = json.loads(shown.stdout)["settings"]["cache_dir"]
    assert found["value"] == str(tmp_path / "conf" / "c")
    assert found["source"] == "config file"


def test_without_a_home_directory_there_is_no_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("HOME", raising=False)
    monkeypatch.setattr("pwd.getpwuid", lambda uid: (_ for _ in ()).throw(KeyError(uid)))
    assert from_settings(environ={}) is None
    path = write_manifests(tmp_path, [hello("a")])
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert [t.name for t in load_tasks([path])] == ["a"]


def test_keys_hold_whether_or_not_pyyaml_was_imported_and_a_changed_loader_misses(
    tmp_path,
) -> None:
    """A hit imports no PyYAML, so a key must not need it: the default loader unchanged has
    one key whether PyYAML is loaded yet or not; a loader changed in-process has another."""
    path = write_manifests(tmp_path / "m", [hello("a"), hello("b")])
    read = f"""
from opus.manifest import load_tasks
from opus.parsecache import ParseCache
tasks = load_tasks([{str(path)!r}], cache=ParseCache({str(tmp_path / "cache")!r}))
print([t.name for t in tasks], "yaml" in sys.modules)
"""
    first = "import sys\n" + read
    through_opus = "import sys\nfrom opus import yamlsafe\nyamlsafe.load('x: 1')\n" + read
    changed = (
        "import sys\nfrom opus import yamlsafe\nyamlsafe.load('x: 1')\nimport yaml\n"
        "yaml.add_constructor('!x', lambda loader, node: 1, Loader=yamlsafe.FastLoader)\n" + read
    )
    outputs, counts = [], []
    for code in (first, first, through_opus, changed):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout.strip())
        counts.append(len(entries(tmp_path / "cache")))
    assert outputs == [
        "['a', 'b'] True",  # parsed: PyYAML imported
        "['a', 'b'] False",  # a hit, without PyYAML
        "['a', 'b'] True",  # PyYAML loaded earlier through opus, loader unchanged: a hit
        "['a', 'b'] True",
    ]
    assert counts == [1, 1, 1, 2]  # the changed loader has an entry of its own
