"""opus reads the ``opus`` entry-point group itself (opus.entrypoints): same answers as
importlib.metadata, and a package installed a moment ago is seen by the next run."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from opus import entrypoints


def dist_info(root: Path, dist: str, version: str, entry_points: str, *, egg: bool = False) -> Path:
    """A distribution's metadata directory as pip writes it (``.dist-info``) or setuptools'
    ``develop`` does (``.egg-info`` with ``PKG-INFO``)."""
    stem = dist.replace("-", "_")
    info = root / (f"{stem}.egg-info" if egg else f"{stem}-{version}.dist-info")
    info.mkdir(parents=True)
    (info / ("PKG-INFO" if egg else "METADATA")).write_text(
        f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n\nA description.\n"
    )
    (info / "entry_points.txt").write_text(entry_points)
    return info


def scan(group: str) -> list[tuple[str, str, str | None, str | None]]:
    return [(e.name, e.value, e.dist.name, e.dist.version) for e in entrypoints.entry_points(group)]


def stdlib(group: str) -> list[tuple[str, str, str | None, str | None]]:
    return [
        (e.name, e.value, e.dist.name if e.dist else None, e.dist.version if e.dist else None)
        for e in importlib.metadata.entry_points(group=group)
    ]


@pytest.mark.parametrize("group", ["opus", "console_scripts", "pytest11"])
def test_same_entry_points_as_importlib_metadata_for_this_environment(group: str) -> None:
    assert scan(group) == stdlib(group)


def test_first_distribution_on_sys_path_wins_and_sections_are_read_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    dist_info(
        first,
        "opus-acme",
        "2.0",
        "# a comment\n[console_scripts]\nacme = acme.cli:main\n\n"
        "[opus]\nacme = acme_plugin\nacme-extra = acme_plugin.more:hooks [fancy]\n",
    )
    dist_info(second, "opus_acme", "1.0", "[opus]\nold = old_plugin\n")  # shadowed
    dist_info(second, "opus-beta", "0.1", "[opus]\nbeta=beta_plugin\n", egg=True)
    monkeypatch.syspath_prepend(str(second))
    monkeypatch.syspath_prepend(str(first))
    mine = [e for e in scan("opus") if e[0] in {"acme", "acme-extra", "old", "beta"}]
    assert mine == [
        ("acme", "acme_plugin", "opus-acme", "2.0"),
        ("acme-extra", "acme_plugin.more:hooks [fancy]", "opus-acme", "2.0"),
        ("beta", "beta_plugin", "opus-beta", "0.1"),
    ]
    assert [e for e in stdlib("opus") if e[0] in {"acme", "acme-extra", "old", "beta"}] == mine


def test_entry_point_load_follows_module_and_attribute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ep_target_mod.py").write_text("class Outer:\n    class Inner:\n        x = 7\n")
    dist_info(tmp_path, "ep-target", "1", "[opus]\nt = ep_target_mod:Outer.Inner [extra]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    [ep] = [e for e in entrypoints.entry_points("opus") if e.name == "t"]
    assert ep.load().x == 7


def test_a_zip_on_sys_path_is_left_to_importlib_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "plugins.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("zipped_dist-1.0.dist-info/METADATA", "Name: zipped-dist\nVersion: 1.0\n")
        zipped.writestr("zipped_dist-1.0.dist-info/entry_points.txt", "[opus]\nzipped = zmod\n")
    monkeypatch.syspath_prepend(str(archive))
    assert ("zipped", "zmod", "zipped-dist", "1.0") in scan("opus")


def test_a_plugin_installed_between_two_runs_is_seen_by_the_second(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path[1:]])}

    def listed() -> set[str]:
        run = subprocess.run(
            [sys.executable, "-m", "opus", "plugins", "-o", "json"],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr
        return {p["name"] for p in json.loads(run.stdout)["plugins"]}

    assert "fresh" not in listed()
    (site / "fresh_plugin.py").write_text(
        "import opus\n\n@opus.hookimpl\ndef opus_command_map():\n    return {'freshen': 'apply'}\n"
    )
    dist_info(site, "opus-fresh", "0.1", "[opus]\nfresh = fresh_plugin\n")
    assert "fresh" in listed()
