"""Compiled fastjsonschema validators are cached per user, and the cache never decides."""

from __future__ import annotations

import marshal
import os
from pathlib import Path

import pytest

fastjsonschema = pytest.importorskip("fastjsonschema", reason="fastjsonschema is not installed")

from opus import schemacache  # noqa: E402
from opus.schemacache import compile_validator  # noqa: E402

SCHEMA = {
    "type": "object",
    "required": ["path"],
    "properties": {"path": {"type": "string", "pattern": "^[a-z]+$"}, "n": {"type": "integer"}},
    "additionalProperties": False,
}
GOOD = [{"path": "abc"}, {"path": "x", "n": 3}]
BAD = [{}, {"path": "ABC"}, {"path": "a", "n": "3"}, {"path": "a", "extra": 1}, []]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OPUS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "schemas"


def verdicts(validate: object) -> list[bool]:
    out = []
    for instance in GOOD + BAD:
        try:
            validate(instance)  # type: ignore[operator]
            out.append(True)
        except fastjsonschema.JsonSchemaException:
            out.append(False)
    return out


EXPECTED = [True] * len(GOOD) + [False] * len(BAD)


def test_cached_validator_judges_like_fastjsonschema_and_is_reused(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert verdicts(fastjsonschema.compile(SCHEMA)) == EXPECTED
    assert verdicts(compile_validator(SCHEMA)) == EXPECTED
    files = list(cache.glob("*.bin"))
    assert len(files) == 1 and oct(files[0].stat().st_mode & 0o777) == "0o600"
    assert oct(cache.stat().st_mode & 0o777) == "0o700"

    def no_compiling(*args: object, **kwargs: object) -> None:
        raise AssertionError("compiled again")

    monkeypatch.setattr(fastjsonschema, "compile_to_code", no_compiling)
    assert verdicts(compile_validator(dict(SCHEMA))) == EXPECTED  # an equal schema: the file


def test_a_damaged_cache_file_is_compiled_again(cache: Path) -> None:
    compile_validator(SCHEMA)
    [path] = cache.glob("*.bin")
    path.write_bytes(b"\x00garbage")
    assert verdicts(compile_validator(SCHEMA)) == EXPECTED
    marshal.loads(path.read_bytes())  # rewritten whole


def test_a_cache_others_can_write_to_is_not_trusted(cache: Path) -> None:
    compile_validator(SCHEMA)
    [path] = cache.glob("*.bin")
    # A planted validator that accepts anything ...
    path.write_bytes(marshal.dumps(compile("def validate(data):\n    return data\n", "x", "exec")))
    os.chmod(cache, 0o777)
    assert verdicts(compile_validator(SCHEMA)) == EXPECTED  # ... is not used
    os.chmod(cache, 0o700)
    os.chmod(path, 0o666)
    assert verdicts(compile_validator(SCHEMA)) == EXPECTED


def test_cache_off_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPUS_CACHE_DIR", "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert schemacache.cache_dir() is None
    assert verdicts(compile_validator(SCHEMA)) == EXPECTED
    assert not any(tmp_path.iterdir())


def test_the_cache_keeps_at_most_max_entries(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schemacache, "MAX_ENTRIES", 4)
    for n in range(6):
        compile_validator({"type": "integer", "maximum": n})
    assert len(list(cache.glob("*.bin"))) <= 4
    validate = compile_validator({"type": "integer", "maximum": 5})
    validate(5)
    with pytest.raises(fastjsonschema.JsonSchemaException):
        validate(6)
