"""A value made from a sensitive output is sensitive too.

A processor lists the output keys that hold secrets in ``sensitive_outputs``. When another
task's spec refers to one (``${VAR:db:password}``), what it resolves to is masked (``***``)
wherever opus shows that task's specs or errors: plan diffs (text, JSON, markdown), what
``describe`` and ``drift`` report, the task's error message, ``opus state show`` and
``opus state list -o json``. The processor gets the real value, and state keeps the applied
spec as it was applied (the secret is in state already, as the other task's output), so
refreshes, deletes and rollbacks work from it.

What is masked of a spec:

- a value that is exactly one such reference, whatever it held when it was applied (so an
  old value is masked too after the secret changed);
- inside longer text, the value as text (JSON for a list or a mapping, and each item of
  it) and as the task's processor writes it there (``render_reference``: shell quoting,
  percent-encoding), each of the values the other task now outputs (see
  :class:`~opus.masking.Masker` for short values and numbers);
- what such a reference stood for in longer text when the task was applied, read against
  the raw spec's literals (where the record already depended on the other task).

What a processor reports (``describe`` details, a drift message, a plan's reason) is masked
too. The processor is told these secrets (``ctx.secrets``) so that it masks them in what it
logs, raises and outputs (``shell/v1`` and ``http/v1`` do). Not followed: a secret that a
processor copies into an output without masking it (hello-world's ``path`` output, say),
and, in ``state show``, other forms than text or JSON and old values (``state show`` has
no manifest to read them against: it masks the values the other tasks hold now). A task
known only by its record (an orphan being pruned) is masked with those values too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from .errors import OpusError
from .masking import MASK, Masker
from .variables import (
    UNKNOWN,
    Placement,
    reference_pattern,
    render_text,
    strings_with_references,
)

if TYPE_CHECKING:
    from .model import Task, TaskState
    from .registry import ProcessorRegistry


#: A raw spec string as literal text around its references, and the numbers of the
#: references (from 0) that stand for a sensitive output.
Template = tuple[tuple[str, ...], tuple[int, ...]]


class SpecSecrets:
    """How one task's specs and messages are shown without the secrets they refer to."""

    __slots__ = ("whole", "templates", "masker", "values")

    def __init__(
        self,
        whole: frozenset[str],
        templates: Mapping[str, Template],
        masker: Masker | None,
        values: tuple[str, ...] = (),
    ) -> None:
        #: spec paths whose value is exactly one reference to a sensitive output
        self.whole = whole
        #: spec paths of longer text with such references: the text as a pattern, and its
        #: groups that stand for a sensitive output (what it held then: an old value too)
        self.templates = templates
        self.masker = masker
        #: the secrets as text, now and as applied: what the processor is told
        #: (``ctx.secrets``) to mask in what it logs, raises and outputs
        self.values = values

    def spec(self, spec: Any) -> Any:
        """A copy of ``spec`` (raw, resolved or as applied) with the secrets masked."""
        return self._walk(spec, "spec")

    def text(self, text: str) -> str:
        """``text`` (an error message) with the secrets masked."""
        return text if self.masker is None else self.masker.text(text)

    def data(self, value: Any) -> Any:
        """A copy of ``value`` (what a processor reports: details, messages) with the
        secrets masked in every string."""
        return value if self.masker is None else self.masker.data(value)

    def _walk(self, value: Any, path: str) -> Any:
        if path in self.whole:
            return value if value is UNKNOWN else MASK  # "(known after apply)" stays
        if isinstance(value, str):
            value = self.text(value)  # the values known now, whole, first
            template = self.templates.get(path)
            return value if template is None else _fill(template, value)
        if isinstance(value, Mapping):
            return {k: self._walk(v, f"{path}.{k}") for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._walk(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return value


def _template(text: str, pattern: re.Pattern[str], sensitive: Collection[str]) -> Template:
    """``text`` (a raw spec string) as the literals its resolved value is made of."""
    literals: list[str] = []
    groups: list[int] = []
    literal, last = "", 0
    for match in pattern.finditer(text):
        literal += text[last : match.start()]
        if match.group(1):  # an escaped $${...}: written as ${...}
            literal += match.group(0)[1:]
        else:
            if match.group(0) in sensitive:
                groups.append(len(literals))
            literals.append(literal)
            literal = ""
        last = match.end()
    literals.append(literal + text[last:])
    return tuple(literals), tuple(groups)


def _spans(template: Template, value: str) -> list[tuple[int, int]] | None:
    """Where each reference of ``template`` stands in ``value``, or ``None`` when
    ``value`` was not made from it (the spec's text changed since).

    Read literal by literal, without backtracking: a sensitive reference takes as much as
    it can (its value may hold the next literal: ``pass@word`` before ``@host``), any other
    as little. Where that cannot be told apart (two references side by side) a sensitive
    one takes its neighbour too: masking too much, never too little."""
    literals, sensitive = template
    last = len(literals) - 1
    if not value.startswith(literals[0]):
        return None
    # latest[i]: where literal i starts at the latest, with literals i.. still fitting
    latest = [0] * (last + 1)
    latest[last] = len(value) - len(literals[last])
    if latest[last] < len(literals[0]) or not value.endswith(literals[last]):
        return None
    for index in range(last - 1, 0, -1):
        start = value.rfind(literals[index], len(literals[0]), latest[index + 1])
        if start < 0:
            return None
        latest[index] = start
    pos, spans = len(literals[0]), []
    for index in range(1, last + 1):
        if index - 1 in sensitive or index == last:
            end = latest[index]
        else:
            end = value.find(literals[index], pos, latest[index] + len(literals[index]))
        if end < pos:
            return None
        spans.append((pos, end))
        pos = end + len(literals[index])
    return spans


def _fill(template: Template, value: str) -> str:
    """``value`` with what the template's sensitive references stand for masked (as it
    is when it was not made from the template)."""
    spans = _spans(template, value)
    if spans is None:
        return value
    out: list[str] = []
    last = 0
    for group in template[1]:
        start, end = spans[group]
        if end > start:  # (adjacent references: the first may have matched nothing)
            out += (value[last:start], MASK)
            last = end
    out.append(value[last:])
    return "".join(out)


class ReferencedSecrets:
    """The sensitive output keys of a run's processors, and what each task refers to."""

    def __init__(self, registry: ProcessorRegistry, api_versions: Iterable[str]) -> None:
        self._registry = registry
        keys: dict[str, frozenset[str]] = {}
        for api_version in set(api_versions):
            if api_version not in registry:
                continue
            try:
                sensitive = registry.get(api_version).sensitive_outputs
            except OpusError:  # a processor that cannot be made fails its own tasks
                continue
            if sensitive:
                keys[api_version] = frozenset(sensitive)
        self._keys = keys

    def __bool__(self) -> bool:
        """Whether any processor of the run has sensitive outputs (most runs: none)."""
        return bool(self._keys)

    def for_task(
        self,
        task: Task,
        prefixes: Collection[str] | None,
        made_by: Callable[[str], str | None],
        outputs_of: Callable[[str], Mapping[str, Any]],
        applied: Mapping[str, Any] | None = None,
        applied_from: Collection[str] = (),
    ) -> SpecSecrets | None:
        """What masks the sensitive outputs ``task``'s spec refers to (``None``: none).

        ``made_by(name)`` and ``outputs_of(name)`` say who made a referenced task and what
        it output (in this run, or as recorded); ``applied``, the task's recorded spec, has
        the values they had then (masked in messages too: a delete quotes them), read only
        where a reference is to a task in ``applied_from`` (what the record depended on: a
        literal that a reference replaced since is no secret)."""
        if not self._keys:
            return None
        sensitive = []
        for ref in task.references(prefixes):
            if ref.task is None:
                continue
            api_version = made_by(ref.task)
            keys = self._keys.get(api_version) if api_version is not None else None
            if keys is not None and ref.name in keys:
                sensitive.append(ref)
        if not sensitive:
            return None
        texts = dict(strings_with_references(task.spec, "spec"))
        renderer = self._renderer(task.api_version)
        whole: set[str] = set()
        forms: set[str] = set()
        values: set[str] = set()
        sensitive_texts = {ref.text for ref in sensitive}
        pattern = reference_pattern(prefixes)
        templates: dict[str, Template] = {}
        for ref in sensitive:
            text = texts.get(ref.path)
            if text == ref.text:
                whole.add(ref.path)
            elif text is not None and ref.path not in templates:
                templates[ref.path] = _template(text, pattern, sensitive_texts)
            value = outputs_of(ref.task or "").get(ref.name)
            if value is None:
                continue
            values.update(_texts(value))
            if renderer is not None and text is not None:
                forms.update(_rendered(renderer, task.spec, ref.path, text, ref.text, value))
        if applied is not None:
            then = {ref.path for ref in sensitive if ref.task in applied_from}
            old = _applied_forms(
                applied, whole & then, {p: t for p, t in templates.items() if p in then}
            )
            values.update(form for form in old if form)
        forms |= values
        masker = Masker(forms) if forms else None
        return SpecSecrets(frozenset(whole), templates, masker, tuple(sorted(values)))

    def for_record(
        self,
        record: TaskState,
        made_by: Callable[[str], str | None],
        outputs_of: Callable[[str], Mapping[str, Any]],
    ) -> SpecSecrets | None:
        """For a task known only by its record (an orphan being pruned: no references to
        read): the sensitive outputs, as they are now, of the tasks it depended on."""
        if not self._keys:
            return None

        def keys_of(name: str) -> Collection[str]:
            api_version = made_by(name)
            return self._keys.get(api_version, ()) if api_version is not None else ()

        values = _dependency_secrets(record, keys_of, outputs_of)
        if not values:
            return None
        return SpecSecrets(frozenset(), {}, Masker(values), tuple(sorted(values)))

    def _renderer(self, api_version: str) -> Any:
        """The processor of ``api_version`` if it writes references its own way."""
        from .processor import TaskProcessor

        if api_version not in self._registry:
            return None
        try:
            processor = self._registry.get(api_version)
        except OpusError:
            return None
        overrides = type(processor).render_reference is not TaskProcessor.render_reference
        return processor if overrides else None


def _texts(value: Any) -> Iterator[str]:
    """The texts a secret may be shown as: the whole (JSON for a list or a mapping), and
    each string or number inside it."""
    whole = render_text(value)
    if whole:
        yield whole
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _texts(item)


def _applied_forms(
    applied: Mapping[str, Any],
    whole: Collection[str],
    templates: Mapping[str, Template],
) -> Iterator[str]:
    """The texts sensitive references had in a recorded spec, as it holds them."""

    def walk(value: Any, path: str) -> Iterator[str]:
        if path in whole:
            if value is not None and value != "":
                yield render_text(value)
            return
        if isinstance(value, str):
            template = templates.get(path)
            spans = _spans(template, value) if template is not None else None
            if spans is not None and template is not None:
                for group in template[1]:
                    start, end = spans[group]
                    if end > start:
                        yield value[start:end]
        elif isinstance(value, Mapping):
            for key, item in value.items():
                yield from walk(item, f"{path}.{key}")
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                yield from walk(item, f"{path}[{i}]")

    yield from walk(applied, "spec")


def _rendered(
    renderer: Any, spec: Mapping[str, Any], path: str, text: str, reference: str, value: Any
) -> Iterator[str]:
    """How ``renderer`` writes ``value`` at each place ``reference`` stands in ``text``."""
    start = text.find(reference)
    while start >= 0:
        placement = Placement(path, text, start, start + len(reference))
        try:
            rendered = renderer.render_reference(spec, placement, value)
        except Exception:  # noqa: BLE001 - it refuses this value here: nothing written
            rendered = None
        if isinstance(rendered, str) and rendered:
            yield rendered
        start = text.find(reference, start + 1)


def _dependency_secrets(
    record: TaskState,
    keys_of: Callable[[str], Collection[str]],
    outputs_of: Callable[[str], Mapping[str, Any]],
) -> set[str]:
    """The texts of the sensitive outputs (``keys_of(name)``) of the tasks ``record``
    depended on."""
    values: set[str] = set()
    for name in record.dependencies or ():
        keys = keys_of(name)
        outputs = outputs_of(name) if keys else {}
        for key in keys:
            value = outputs.get(key)
            if value is not None:
                values.update(_texts(value))
    return values


def recorded_masker(
    record: TaskState, recorded: Callable[[str], TaskState | None], registry: ProcessorRegistry
) -> Masker | None:
    """A masker of the sensitive outputs of the tasks ``record`` depends on, as recorded
    (``recorded(name)``): what ``opus state show`` masks in the applied spec it prints.
    Outputs of a processor that is not installed all count as sensitive (nobody can tell)."""
    from .outputs import sensitive_keys

    others = {name: recorded(name) for name in record.dependencies or ()}  # read once

    def keys_of(name: str) -> Collection[str]:
        other = others[name]
        if other is None or not other.outputs:
            return ()
        return sensitive_keys(other.api_version, other.outputs, registry)

    def outputs_of(name: str) -> Mapping[str, Any]:
        other = others[name]
        return other.outputs if other is not None else {}

    values = _dependency_secrets(record, keys_of, outputs_of)
    return Masker(values) if values else None
