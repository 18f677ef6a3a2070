"""Reading YAML safely: the safe loader (libyaml's when available) and a bound on aliases.

An alias (``*name``) repeats a whole anchored node; nested aliases multiply, so a few hundred
bytes can stand for billions of nodes (a "billion laughs" bomb). Each document is composed
first (aliases stay shared, so this is cheap), its expanded size counted over the node graph,
and only then constructed: a document whose aliases would add more than
:data:`MAX_ALIAS_NODES` nodes, or that refers to itself, is refused.

PyYAML is imported on first use (parsing, or looking up a loader), not with this module:
manifests read from the parse cache (:mod:`opus.parsecache`) never need it.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import yaml

logger = logging.getLogger(__name__)

#: The loader used when none is given, looked up at each call (tests switch it); by default
#: :class:`~opus.yamlloader.FastLoader`. Bound on first use, which imports PyYAML.
SafeLoader: type[Any]
#: opus's loader and PyYAML's pure-Python one (the reference for every message and line),
#: from :mod:`opus.yamlloader`; bound on first use.
FastLoader: type[Any]
PythonLoader: type[Any]

_LAZY = ("FastLoader", "PythonLoader", "SafeLoader")

#: The fingerprint of :class:`FastLoader` as PyYAML defined it, when opus imported PyYAML
#: first in this process (so that nothing could have changed the loader before).
_PRISTINE: list[bytes] = []


def __getattr__(name: str) -> Any:
    """The loaders, bound on first use (PEP 562): importing them imports PyYAML."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    fresh = "yaml" not in sys.modules
    from . import yamlloader

    names = globals()
    names.setdefault("FastLoader", yamlloader.FastLoader)
    names.setdefault("PythonLoader", yamlloader.PythonLoader)
    names.setdefault("SafeLoader", yamlloader.FastLoader)
    if fresh and not _PRISTINE:
        _PRISTINE.append(loader_fingerprint(yamlloader.FastLoader))
    return names[name]


def _loader(name: str) -> type[Any]:
    found = globals().get(name)
    return found if found is not None else __getattr__(name)  # type: ignore[no-any-return]


def loader_fingerprint(loader: type[Any]) -> bytes:
    """What a loader's output depends on besides the text (constructors, resolvers)."""
    constructors = getattr(loader, "yaml_constructors", {})
    resolvers = getattr(loader, "yaml_implicit_resolvers", {})
    parts = [
        f"{loader.__module__}.{loader.__qualname__}",
        repr(
            sorted(
                (str(tag), f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', fn)}")
                for tag, fn in constructors.items()
            )
        ),
        repr(
            sorted(
                (str(first), [(tag, getattr(rx, "pattern", rx)) for tag, rx in items])
                for first, items in resolvers.items()
            )
        ),
    ]
    return "\n".join(parts).encode()


#: :func:`loader_identity` of the default loader as shipped.
DEFAULT_LOADER_IDENTITY = b"opus default loader, unchanged"


def loader_identity(loader: type[Any] | None = None) -> bytes:
    """What a parse-cache key says about the loader that reads a file (``None``: the default).

    The default loader unchanged -- PyYAML not imported yet in this process, so nothing can
    have changed it, or its constructors and resolvers still as PyYAML defined them when
    opus imported it -- is :data:`DEFAULT_LOADER_IDENTITY` without importing PyYAML; its
    behaviour then depends only on the installed PyYAML and opus files, which the cache key
    covers. Any other loader is its :func:`loader_fingerprint`.
    """
    if loader is None:
        if globals().get("SafeLoader") is None and "yaml" not in sys.modules:
            return DEFAULT_LOADER_IDENTITY
        loader = _loader("SafeLoader")
    found = loader_fingerprint(loader)
    if _PRISTINE and found == _PRISTINE[0]:
        return DEFAULT_LOADER_IDENTITY
    return found


#: How many nodes aliases may add to one document beyond those written out.
MAX_ALIAS_NODES = 100_000


#: Problems found by opus itself, not by a parser: the same with any loader.
_OWN_PROBLEMS = ("aliases expand", "a recursive alias")


class YamlProblem(Exception):
    """YAML that cannot be read: ``problem`` says why, ``line`` (1-based) where if known."""

    def __init__(self, problem: str, line: int | None = None) -> None:
        self.problem = problem
        self.line = line
        super().__init__(f"{problem} (line {line})" if line else problem)


def _children(node: yaml.Node) -> list[yaml.Node]:
    import yaml

    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [item for pair in node.value for item in pair]
    return []


def check_aliases(root: yaml.Node, limit: int = MAX_ALIAS_NODES) -> None:
    """Raise :class:`YamlProblem` if ``root`` expands to more than ``limit`` extra nodes
    (through aliases) or contains itself."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    distinct = 0
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            if sizes[key] - distinct > limit:
                raise YamlProblem(
                    f"aliases expand this document beyond {limit} extra nodes "
                    "(an alias bomb?); write the data out instead",
                    node.start_mark.line + 1,
                )
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise YamlProblem(
                "a recursive alias (a node that contains itself) is not allowed",
                node.start_mark.line + 1,
            )
        on_path.add(key)
        distinct += 1
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)


def _problem(exc: yaml.YAMLError, text: str) -> YamlProblem:
    import yaml

    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        return YamlProblem(str(exc.problem or exc.context), mark.line + 1 if mark else None)
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1
        return YamlProblem(f"unacceptable character #x{exc.character:04x}: {exc.reason}", line)
    return YamlProblem(str(exc))


def _read(text: str, loader: type[Any]) -> Iterator[tuple[int, Any]]:
    import yaml

    anchors = "&" in text  # no anchor, no alias: nothing to count
    try:
        reader = loader(text)
    except yaml.YAMLError as exc:
        raise _problem(exc, text) from None
    try:
        while reader.check_node():
            node = reader.get_node()
            if node is None:
                continue
            if anchors:
                check_aliases(node)
            yield node.start_mark.line + 1, reader.construct_document(node)
    except yaml.YAMLError as exc:
        raise _problem(exc, text) from None
    finally:
        reader.dispose()


def documents(text: str, loader: type[Any] | None = None) -> Iterator[tuple[int, Any]]:
    """``(line, data)`` for each non-empty document of ``text``; :class:`YamlProblem` if
    the YAML is invalid or an alias bomb.

    libyaml words its errors its own way (and rejects a few things PyYAML accepts), so
    when it fails the text is read again by the pure-Python loader, whose outcome counts:
    the same messages and lines whichever loader is installed, at no cost for valid YAML.
    """
    loader = loader or _loader("SafeLoader")
    python_loader = _loader("PythonLoader")
    done = 0
    try:
        for found in _read(text, loader):
            done += 1
            yield found
    except YamlProblem as problem:
        if loader is python_loader or problem.problem.startswith(_OWN_PROBLEMS):
            raise
        logger.debug("libyaml failed, reading again with PyYAML: %s", problem)
        for index, found in enumerate(_read(text, python_loader)):
            if index >= done:
                yield found


def _load_one(text: str, loader: type[Any]) -> Any:
    import yaml

    try:
        reader = loader(text)
    except yaml.YAMLError as exc:
        raise _problem(exc, text) from None
    try:
        node = reader.get_single_node()
        if node is None:
            return None
        if "&" in text:
            check_aliases(node)
        return reader.construct_document(node)
    except yaml.YAMLError as exc:
        raise _problem(exc, text) from None
    finally:
        reader.dispose()


def load(text: str, loader: type[Any] | None = None) -> Any:
    """The one document of ``text`` (``None`` if empty), like ``yaml.safe_load``; read
    again by the pure-Python loader if libyaml fails, as :func:`documents` is."""
    loader = loader or _loader("SafeLoader")
    python_loader = _loader("PythonLoader")
    try:
        return _load_one(text, loader)
    except YamlProblem as problem:
        if loader is python_loader or problem.problem.startswith(_OWN_PROBLEMS):
            raise
        logger.debug("libyaml failed, reading again with PyYAML: %s", problem)
        return _load_one(text, python_loader)


def _path_parts(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for piece in re.findall(r"\[(\d+)\]|([^.\[\]]+)", path):
        parts.append(int(piece[0]) if piece[0] else piece[1])
    return parts


def node_line(root: yaml.Node, path: str) -> int:
    """The line (1-based) of what ``path`` (``spec.env.A``, ``metadata.labels[0]``) names
    under ``root``: the key of a mapping entry, an item of a list, or the deepest node that
    exists on the way (a missing key is reported where its mapping is)."""
    import yaml

    node, line = root, int(root.start_mark.line) + 1
    for part in _path_parts(path):
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            found = [
                (k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == part
            ]
            if not found:
                break
            key, node = found[0]
            line = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def document_nodes(text: str, loader: type[Any] | None = None) -> dict[int, yaml.Node]:
    """Each document's composed node by the line it starts on (nothing constructed, so
    aliases stay shared); empty if the YAML is invalid."""
    import yaml

    found: dict[int, yaml.Node] = {}
    try:
        reader = (loader or _loader("SafeLoader"))(text)
    except yaml.YAMLError:
        return {}
    try:
        while reader.check_node():
            node = reader.get_node()
            if node is not None:
                found[node.start_mark.line + 1] = node
    except yaml.YAMLError:
        return {}
    finally:
        reader.dispose()
    return found


def task_node(document: yaml.Node, name: str | None) -> yaml.Node | None:
    """The task mapping in a document: the document, or the item of a list of tasks whose
    ``metadata.name`` is ``name``."""
    import yaml

    if not isinstance(document, yaml.SequenceNode):
        return document
    for item in document.value:
        if isinstance(item, yaml.MappingNode):
            for key, value in item.value:
                if getattr(key, "value", None) == "metadata" and isinstance(
                    value, yaml.MappingNode
                ):
                    names = [v.value for k, v in value.value if getattr(k, "value", None) == "name"]
                    if names and names[0] == name:
                        return item
    return None
