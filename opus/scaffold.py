"""``opus init-plugin``: write a ready plugin package ``opus-NAME/``.

The package holds one processor (``NAME/v1``) that keeps a text file in sync with its
spec, a JSON Schema for that spec, tests built on :class:`opus.testing.ProcessorContract`,
and a ``pyproject.toml`` declaring the ``opus`` entry point. Its tests pass once it is
pip-installed; authors then replace the file logic with their own resource.
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import OpusError

#: What a plugin name may look like: it becomes ``opus-NAME``, ``opus_NAME`` and ``NAME/v1``.
NAME_PATTERN = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")


#: Plugin names opus registers itself (its builtins, the CLI's output plugins): a plugin
#: package of that name would clash with them on every command.
RESERVED_NAMES = frozenset({"cli-events", "cli-progress"})


def reserved(name: str) -> bool:
    """Whether ``name`` is (or may become) the name of one of opus' own plugins."""
    return name == "builtin" or name.startswith("builtin-") or name in RESERVED_NAMES


class ScaffoldError(OpusError):
    """The plugin package cannot be written (bad name, directory exists)."""


def names(name: str) -> dict[str, str]:
    """The names derived from ``name``: distribution, module, class, apiVersion."""
    if not NAME_PATTERN.fullmatch(name) or len(name) > 60:
        raise ScaffoldError(
            f"invalid plugin name {name!r}: use lowercase letters, digits and single hyphens, "
            "starting with a letter (like 'dns-record')"
        )
    if reserved(name):
        raise ScaffoldError(
            f"{name!r} is the name of a builtin plugin (names 'builtin' and 'builtin-*' are "
            "reserved): choose another name"
        )
    parts = name.split("-")
    return {
        "name": name,
        "dist": f"opus-{name}",
        "module": "opus_" + "_".join(parts),
        "cls": "".join(p.capitalize() for p in parts) + "Processor",
        "api": f"{name}/v1",
        "kind": "".join(p.capitalize() for p in parts),
    }


def init_plugin(name: str, directory: Path | str = ".") -> Path:
    """Write ``opus-NAME/`` under ``directory`` and return its path.

    Refuses an invalid name and an existing target (nothing is overwritten).
    """
    n = names(name)
    root = Path(directory) / n["dist"]
    if root.exists():
        raise ScaffoldError(f"{root} already exists; choose another --dir or remove it")
    files = {
        "pyproject.toml": PYPROJECT,
        "README.md": README,
        f"{n['module']}/__init__.py": MODULE,
        f"{n['module']}/py.typed": "",
        "tests/test_contract.py": TESTS,
        "examples/tasks.yaml": EXAMPLE,
    }
    for relative, template in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**n), encoding="utf-8")
    return root


PYPROJECT = """\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.1.0"
description = "opus plugin: the {api} processor"
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["opus"]

[project.optional-dependencies]
test = ["pytest>=7.4"]

# opus finds plugins through this entry-point group; the name is the plugin's name
# (used by --disable-plugin and by plugin_config in opus.yaml).
[project.entry-points.opus]
{name} = "{module}"

[tool.setuptools]
packages = ["{module}"]

[tool.setuptools.package-data]
{module} = ["py.typed"]

[tool.ruff]
line-length = 100

[tool.pytest.ini_options]
testpaths = ["tests"]
"""

MODULE = '''\
"""opus plugin: ``{api}`` keeps a text file (``spec.path``) holding ``spec.text``.

Replace the file logic with your own resource; keep the shape: each action reads
``ctx.spec`` and returns outputs (a dict or an ``opus.Result``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, ClassVar

from opus import OpusError, Result, Task, TaskContext, TaskProcessor, hookimpl


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class {cls}(TaskProcessor):
    """Keeps ``spec.path`` (relative to the working directory) holding ``spec.text``."""

    api_version = "{api}"
    spec_schema: ClassVar[dict[str, Any]] = {{
        "type": "object",
        "properties": {{
            "path": {{"type": "string", "minLength": 1, "description": "relative file path"}},
            "text": {{"type": "string", "description": "what the file holds"}},
        }},
        "required": ["path", "text"],
        "additionalProperties": False,
    }}

    @staticmethod
    def _path(task: Task, ctx: TaskContext) -> Path:
        raw = Path(str(ctx.spec["path"]))
        if raw.is_absolute() or ".." in raw.parts:
            raise OpusError(f"task {{task.name!r}}, spec.path: must stay in the working directory")
        return raw

    def create(self, task: Task, ctx: TaskContext) -> Result:
        path = self._path(task, ctx)
        text = str(ctx.spec["text"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        ctx.logger.info("wrote %s", path)
        return Result(outputs={{"path": str(path)}}, resource_checksum=_digest(text))

    update = create

    def delete(self, task: Task, ctx: TaskContext) -> None:
        self._path(task, ctx).unlink(missing_ok=True)  # deleting twice is harmless

    def describe(self, task: Task, ctx: TaskContext) -> dict[str, Any]:
        path = self._path(task, ctx)
        return {{"path": str(path), "exists": path.exists()}}

    def detect_drift(self, task: Task, ctx: TaskContext) -> Result:
        path = self._path(task, ctx)
        if not path.exists():
            return Result(drifted=True, message=f"{{path}} is missing")
        actual = _digest(path.read_text(encoding="utf-8"))
        return Result(drifted=actual != _digest(str(ctx.spec["text"])), resource_checksum=actual)

    def rollback(self, task: Task, ctx: TaskContext) -> None:
        if ctx.failed_action == "create":  # undo a create: nothing may be left behind
            self._path(task, ctx).unlink(missing_ok=True)


@hookimpl
def opus_register_processors() -> list[type[TaskProcessor]]:
    return [{cls}]
'''

TESTS = '''\
"""The {api} processor against opus' processor contract (real runs, temporary state)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from opus.testing import ProcessorContract

from {module} import {cls}


class Test{cls}Contract(ProcessorContract):
    processor = {cls}
    spec: ClassVar[dict[str, Any]] = {{"path": "out/hello.txt", "text": "hello"}}
    changed_spec: ClassVar[dict[str, Any]] = {{"path": "out/hello.txt", "text": "hello again"}}

    def tamper(self, ctx):
        Path(ctx.spec["path"]).write_text("edited by hand")

    def exists(self, ctx):
        return Path(ctx.spec["path"]).exists()


def test_paths_outside_the_working_directory_are_refused(opus_engine) -> None:
    task = {{
        "apiVersion": "{api}",
        "kind": "{kind}",
        "metadata": {{"name": "escape"}},
        "spec": {{"path": "../outside.txt", "text": "x"}},
    }}
    opus_engine.register_processor({cls})
    result = opus_engine.run("apply", [task], context="test")
    assert "must stay in the working directory" in (result.tasks["escape"].error or "")
    assert not Path("../outside.txt").exists()
'''

EXAMPLE = """\
apiVersion: {api}
kind: {kind}
metadata:
  name: hello
spec:
  path: out/hello.txt
  text: Hello from {dist}
"""

README = """\
# {dist}

An opus plugin: the `{api}` processor keeps a text file
holding the spec's `text`.

```sh
pip install -e '.[test]'
opus plugins                      # lists {name} and {api}
opus apply -f examples/tasks.yaml --context dev
python -m pytest                  # the processor contract (opus.testing.ProcessorContract)
```

Spec (checked against `{cls}.spec_schema`):

| key    | type   | meaning                                        |
|--------|--------|------------------------------------------------|
| `path` | string | file path, relative to the working directory   |
| `text` | string | what the file holds                            |

Replace the file logic in `{module}/__init__.py` with your own resource, update the
schema, `spec`, `changed_spec`, `tamper` and `exists` in `tests/test_contract.py`, and
keep the tests green.
"""
