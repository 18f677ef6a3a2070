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


def test_a_second_cli_run_loads_its_validators_instead_of_compiling(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "spy_compile.py").write_text(
        "import fastjsonschema, os\n"
        "real = fastjsonschema.compile_to_code\n"
        "def spy(*args, **kwargs):\n"
        "    with open(os.environ['SPY_LOG'], 'a') as log:\n"
        "        log.write('compiled\\n')\n"
        "    return real(*args, **kwargs)\n"
        "fastjsonschema.compile_to_code = spy\n"
    )
    (tmp_path / "t.yaml").write_text(
        "apiVersion: hello-world/v1\nkind: HelloWorld\n"
        # scopes: metadata the validation shortcut leaves to the schema
        "metadata: {name: hi, processingScopes: [{contexts: [default]}]}\nspec: {path: x}\n"
    )
    log = tmp_path / "compiles.log"
    env = {
        **os.environ,
        "OPUS_CACHE_DIR": str(tmp_path / "cache"),
        "SPY_LOG": str(log),
        "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path[1:]]),
    }
    pytest.importorskip("opus_hello_world", reason="the hello-world plugin is not installed")
    counts = []
    for _ in range(2):
        run = subprocess.run(
            [sys.executable, "-m", "opus", "-p", "spy_compile", "validate", "-f", "t.yaml"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr
        counts.append(log.read_text().count("compiled") if log.exists() else 0)
    # the metadata schema, once (hello-world/v1's spec passes the plain-Python shortcut of
    # opus.schemashortcut, which compiles nothing)
    assert counts[0] >= 1
    assert counts[1] == counts[0]  # the second run compiled nothing
