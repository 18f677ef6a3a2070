"""`opus init-plugin`: what it writes (fast checks; the real install is in test_entry_points)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from opus.cli.app import cli
from opus.cli.session import Session
from opus.scaffold import ScaffoldError, init_plugin

BIN = Path(sys.executable).parent


def test_writes_a_package_with_entry_point_schema_tests_and_readme(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["init-plugin", "dns-record", "--dir", str(tmp_path)], obj=Session()
    )
    assert result.exit_code == 0, result.output
    root = tmp_path / "opus-dns-record"
    meta = tomllib.loads((root / "pyproject.toml").read_text())
    assert meta["project"]["name"] == "opus-dns-record"
    assert meta["project"]["entry-points"]["opus"] == {"dns-record": "opus_dns_record"}
    sys.path.insert(0, str(root))
    try:
        import opus_dns_record

        processor = opus_dns_record.DnsRecordProcessor
        assert processor.api_version == "dns-record/v1"
        assert processor.spec_schema["additionalProperties"] is False
        assert processor.supported_actions() == (
            "create",
            "update",
            "delete",
            "describe",
            "detect_drift",
            "rollback",
        )
    finally:
        sys.path.remove(str(root))
        sys.modules.pop("opus_dns_record", None)
    assert "ProcessorContract" in (root / "tests" / "test_contract.py").read_text()
    assert "opus-dns-record" in (root / "README.md").read_text()


def test_generated_code_is_lint_and_format_clean(tmp_path: Path) -> None:
    root = init_plugin("lint-me", tmp_path)
    for args in (["check", str(root)], ["format", "--check", str(root)]):
        ruff = subprocess.run([str(BIN / "ruff"), *args], capture_output=True, text=True)
        assert ruff.returncode == 0, ruff.stdout + ruff.stderr


@pytest.mark.parametrize("name", ["Bad", "x_y", "-x", "x--y", "9lives", "a/b", ""])
def test_invalid_names_are_refused(name: str, tmp_path: Path) -> None:
    with pytest.raises(ScaffoldError, match="invalid plugin name"):
        init_plugin(name, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_directory_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "opus-kept").mkdir()
    (tmp_path / "opus-kept" / "mine.txt").write_text("keep")
    result = CliRunner().invoke(cli, ["init-plugin", "kept", "--dir", str(tmp_path)], obj=Session())
    assert result.exit_code == 2 and "already exists" in result.output
    assert [p.name for p in (tmp_path / "opus-kept").iterdir()] == ["mine.txt"]
