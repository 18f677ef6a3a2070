"""``${PREFIX:...}`` references: finding them and resolving them.

- ``${VAR:task-name:KEY}``: output ``KEY`` of task ``task-name`` (variable ``task-name:KEY``)
- ``${VAR:NAME}``: a user variable
- ``${ENV:NAME}``: an environment variable (the builtin ``ENV`` source)
- ``${PREFIX:TEXT}``: a variable source added by a plugin (``opus_variable_sources``)
- ``$${...}``: a literal ``${...}``

Only known prefixes are references: ``${HOME:-x}`` in a shell script stays text unless a
plugin adds a ``HOME`` source. ``VAR`` is part of the resolver; every other prefix is a
*source*, a callable that gets the text after the prefix and returns the value.

A string that is exactly one reference keeps the referenced value's type; references inside
a longer string are rendered as text (JSON for lists and dicts). A *renderer* (see
:data:`Renderer`) lets a processor decide how a value is written into a string, for instance
quoted for a shell (``TaskProcessor.render_reference``).
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any, NamedTuple

from .errors import OpusError, VariableError

#: A variable source: gets the text after ``PREFIX:`` and returns the value.
VariableSource = Callable[[str], Any]

#: Prefixes opus itself knows: ``VAR`` (the resolver) and ``ENV`` (a builtin source).
BUILTIN_PREFIXES: tuple[str, ...] = ("VAR", "ENV")

#: What a source prefix may look like.
PREFIX_PATTERN = re.compile(r"[A-Z][A-Z0-9_]*")


@functools.lru_cache(maxsize=32)
def _pattern(prefixes: frozenset[str]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(p) for p in sorted(prefixes, key=lambda p: (-len(p), p)))
    return re.compile(r"\$(\$?)\{(" + alternatives + r"):([^}]*)\}")


def reference_pattern(prefixes: Collection[str] | None = None) -> re.Pattern[str]:
    """The regular expression matching references with one of ``prefixes``."""
    return _pattern(frozenset(BUILTIN_PREFIXES if prefixes is None else prefixes) | {"VAR"})


def env_source(environ: Mapping[str, str] | None = None) -> VariableSource:
    """The builtin ``ENV`` source: ``${ENV:NAME}`` is the environment variable ``NAME``."""

    def lookup(name: str) -> str:
        env = os.environ if environ is None else environ
        if name in env:
            return env[name]
        raise VariableError(f"environment variable {name!r} is not set")

    return lookup


class Reference(NamedTuple):
    """One reference found in a spec; ``path`` is where (``spec.a.b[0]``)."""

    source: str  # "VAR" or "ENV"
    name: str  # user variable / env var name, or output key for task references
    task: str | None
    path: str
    text: str

    @property
    def variable(self) -> str:
        """The key this reference looks up in the variables mapping."""
        return f"{self.task}:{self.name}" if self.task else self.name


def _task_and_key(body: str) -> tuple[str | None, str]:
    """``(task, key)`` of a ``${VAR:body}`` (``task`` ``None`` for a user variable)."""
    body = body.strip()
    if ":" not in body:
        return None, body
    task, _, key = body.partition(":")
    return task.strip(), key.strip()


def _parse(source: str, body: str, path: str, text: str) -> Reference:
    if source == "VAR":
        task, key = _task_and_key(body)
        return Reference("VAR", key, task, path, text)
    return Reference(source, body.strip(), None, path, text)


def strings_with_references(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """``(path, text)`` of every string in ``value`` that may hold a reference (``${``),
    with the paths references get (``spec.a.b[0]``)."""
    if isinstance(value, str):
        if "${" in value:
            yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from strings_with_references(item, f"{path}.{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from strings_with_references(item, f"{path}[{index}]")


def find_references(
    spec: Any, root: str = "spec", prefixes: Collection[str] | None = None
) -> list[Reference]:
    """Every reference in ``spec`` (nested dicts and lists), with its path.

    ``prefixes`` are the known source prefixes (default ``VAR`` and ``ENV``; pass
    :meth:`Plugins.variable_prefixes() <opus.Plugins.variable_prefixes>` to include the
    plugins' sources); ``${OTHER:...}`` with an unknown prefix is plain text.
    """
    pattern = reference_pattern(prefixes)
    found = []
    for path, text in strings_with_references(spec, root):
        for match in pattern.finditer(text):
            if match.group(1):  # escaped $${...}
                continue
            found.append(_parse(match.group(2), match.group(3), path, match.group(0)))
    for ref in found:
        if not ref.name or (ref.task is not None and not ref.task):
            raise VariableError(f"{ref.path}: malformed reference {ref.text!r}")
    return found


class _Unknown:
    """A value not known yet (an output of a task that ``plan`` would change)."""

    def __repr__(self) -> str:
        return "(known after apply)"


#: Placeholder for values known only after apply; rendered as ``(known after apply)``.
UNKNOWN = _Unknown()


class Placement(NamedTuple):
    """Where a reference's value goes: the spec ``path`` (``spec.create[0]``), the raw
    ``text`` of that string, and the reference's span ``text[start:end]``."""

    path: str
    text: str
    start: int
    end: int


#: ``render(placement, value) -> text | None``: how a referenced value is written into its
#: string. ``None`` keeps the default (the value's type for a string that is exactly one
#: reference, text otherwise). Called for every reference in a string, including one that is
#: the whole string; never for values not known yet (:data:`UNKNOWN`).
Renderer = Callable[[Placement, Any], "str | None"]


def render_text(value: Any) -> str:
    """The text of a value inside a longer string: strings as they are, lists/dicts as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return str(value)


#: A string that is exactly one reference, whatever its source: ``${VAR:x}``,
#: ``${ENV:HOME}``, ``${SOURCE:...}`` (a spec schema lets it stand for any value).
WHOLE_REFERENCE = r"\$\{[A-Za-z][A-Za-z0-9_]*:[^}]*\}"

#: Types whose values hold no text (so no reference): JSON's scalars but strings.
SCALAR_TYPES = frozenset({int, float, bool, type(None)})


def _plain(value: Any) -> bool:
    """Whether ``value`` certainly holds no reference (a scalar, or text without ``${``)."""
    kind = type(value)
    return kind in SCALAR_TYPES or (kind is str and "${" not in value)


#: The pattern of the last set of source prefixes asked (a run asks with one set per task).
_last_pattern: tuple[frozenset[str], re.Pattern[str]] | None = None


def _source_pattern(sources: Mapping[str, VariableSource]) -> re.Pattern[str]:
    global _last_pattern
    last = _last_pattern
    if last is not None and last[0] == sources.keys():
        return last[1]
    prefixes = frozenset(sources)
    pattern = reference_pattern(prefixes)
    _last_pattern = (prefixes, pattern)
    return pattern


def resolve_spec(
    spec: Mapping[str, Any],
    variables: Mapping[str, Any],
    *,
    task_name: str,
    environ: Mapping[str, str] | None = None,
    sources: Mapping[str, VariableSource] | None = None,
    render: Renderer | None = None,
) -> dict[str, Any]:
    """Return a copy of ``spec`` with every reference replaced by its value.

    ``sources`` maps prefixes to :data:`VariableSource` callables (default: the ``ENV``
    source reading ``environ``, or ``os.environ``). ``render`` (optional) writes values into
    strings (see :data:`Renderer`). Raises :class:`VariableError` naming the task, the spec
    path and the reference for anything that cannot be resolved, including a source that
    fails.
    """
    sources = {"ENV": env_source(environ)} if sources is None else sources
    resolver = _Resolver(variables, task_name, sources, _source_pattern(sources), render)
    resolved: dict[str, Any] = resolver.walk(spec, "spec")
    return resolved


class _Resolver:
    """One :func:`resolve_spec` call: the spec walk and each reference's value."""

    __slots__ = ("variables", "task_name", "sources", "pattern", "render")

    def __init__(
        self,
        variables: Mapping[str, Any],
        task_name: str,
        sources: Mapping[str, VariableSource],
        pattern: re.Pattern[str],
        render: Renderer | None,
    ) -> None:
        self.variables, self.task_name, self.sources = variables, task_name, sources
        self.pattern, self.render = pattern, render

    def walk(self, value: Any, path: str) -> Any:
        # a child's path is built only when it is a container or a reference
        if isinstance(value, str):
            return self.text(value, path) if "${" in value else value
        if isinstance(value, (dict, Mapping)):
            return {
                key: item if _plain(item) else self.walk(item, f"{path}.{key}")
                for key, item in value.items()
            }
        if isinstance(value, (list, tuple)):
            return [
                item if _plain(item) else self.walk(item, f"{path}[{i}]")
                for i, item in enumerate(value)
            ]
        return value

    def text(self, text: str, path: str) -> Any:
        whole = self.pattern.fullmatch(text)
        if whole is not None and not whole.group(1):  # exactly one reference: its value
            source, body = whole.group(2, 3)
            if source == "VAR" and self.render is None:  # the usual case: one lookup
                task, key = _task_and_key(body)  # what Reference.variable says, no Reference
                variable = f"{task}:{key}" if task else key
                if variable in self.variables:
                    return self.variables[variable]
            value = self.lookup(_parse(source, body, path, text))
            rendered = self.custom(whole, path, value)
            return value if rendered is None else rendered
        unknown = False

        def substitute(m: re.Match[str]) -> str:
            nonlocal unknown
            if m.group(1):
                return m.group(0)[1:]
            value = self.lookup(_parse(m.group(2), m.group(3), path, m.group(0)))
            unknown = unknown or value is UNKNOWN
            rendered = self.custom(m, path, value)
            return render_text(value) if rendered is None else rendered

        text = self.pattern.sub(substitute, text)
        return UNKNOWN if unknown else text  # a text with an unknown part is unknown

    def custom(self, m: re.Match[str], path: str, value: Any) -> str | None:
        if self.render is None or value is UNKNOWN:
            return None
        return self.render(Placement(path, m.string, m.start(), m.end()), value)

    def lookup(self, ref: Reference) -> Any:
        variables = self.variables
        if ref.source != "VAR":
            return self.from_source(ref)
        if ref.variable in variables:
            return variables[ref.variable]
        if ref.task:
            what = f"task {ref.task!r} has no output {ref.name!r}"
            outputs = sorted(k.split(":", 1)[1] for k in variables if k.startswith(ref.task + ":"))
            if outputs:
                what += f" (it has: {', '.join(outputs)})"
        else:
            what = f"variable {ref.name!r} is not defined (set it with variables=)"
        raise VariableError(
            f"task {self.task_name!r}, {ref.path}: {what} (reference {ref.text})",
            argument=None if ref.task else "variables",
        )

    def from_source(self, ref: Reference) -> Any:
        body = ref.name  # the text after "${PREFIX:", stripped
        try:
            return self.sources[ref.source](body)
        except (VariableError, LookupError) as exc:
            message = exc.args[0] if exc.args and isinstance(exc, VariableError) else None
            what = message or f"{ref.source} source has no value for {body!r}"
        except OpusError as exc:
            what = f"{ref.source} source failed: {exc}"
        except Exception as exc:  # a plugin's source is broken: say which one and where
            what = f"{ref.source} source failed: {type(exc).__name__}: {exc}"
        raise VariableError(f"task {self.task_name!r}, {ref.path}: {what} (reference {ref.text})")


def parse_assignments(pairs: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Parse ``k=v`` pairs (the CLI's ``--var``); values are YAML scalars (``3`` is an int,
    ``true`` a bool)."""
    from .yamlsafe import YamlProblem, load

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise VariableError(f"{pair!r} in pairs=: expected NAME=VALUE", argument="pairs")
        try:
            value = load(raw) if raw else ""
        except YamlProblem:
            value = raw
        out[key.strip()] = raw if isinstance(value, (dict, list)) or value is None else value
    return out


def load_values(path: str, context: str | None) -> dict[str, Any]:
    """Read a values file; entries under ``contexts: {CONTEXT: {...}}`` override per context."""
    from .errors import ConfigError
    from .yamlsafe import YamlProblem, load

    try:
        with open(path, encoding="utf-8") as handle:
            data = load(handle.read())
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise ConfigError(f"{path}: cannot read values file: {reason}") from None
    except YamlProblem as exc:
        where = f"{path}:{exc.line}" if exc.line else path
        raise ConfigError(f"{where}: invalid YAML: {exc.problem}") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: a values file must be a mapping of NAME: value")
    values = {k: v for k, v in data.items() if k != "contexts"}
    overrides = data.get("contexts") or {}
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"{path}: 'contexts' must map context names to mappings")
    if context is not None and context in overrides:
        extra = overrides[context] or {}
        if not isinstance(extra, Mapping):
            raise ConfigError(f"{path}: contexts.{context} must be a mapping")
        values.update(extra)
    return values
