"""Reading YAML safely: the safe loader (libyaml's when available) and a bound on aliases.

An alias (``*name``) repeats a whole anchored node; nested aliases multiply, so a few hundred
bytes can stand for billions of nodes (a "billion laughs" bomb). Each document is composed
first (aliases stay shared, so this is cheap), its expanded size counted over the node graph,
and only then constructed: a document whose aliases would add more than
:data:`MAX_ALIAS_NODES` nodes, or that refers to itself, is refused.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import yaml

logger = logging.getLogger(__name__)

#: PyYAML's pure-Python safe loader: the reference for every error message and line.
PythonLoader: type[Any] = yaml.SafeLoader

_STR, _INT, _FLOAT = "tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
_BOOL, _NULL = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null"
_MAP, _SEQ = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"
_MERGE, _VALUE = "tag:yaml.org,2002:merge", "tag:yaml.org,2002:value"


class _Slow(Exception):
    """A node the shortcut does not build: the document is built the standard way."""


class FastLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """libyaml's safe loader (PyYAML's where it lacks libyaml) with two shortcuts that
    change nothing it returns (the tests read every document with both and compare):

    * a plain scalar's tag is resolved once per distinct text and style (PyYAML runs the
      implicit resolvers' regular expressions for every scalar);
    * a document of plain maps, lists, strings, numbers, booleans and nulls is built by
      one recursive function; anything else (a merge key, another tag, a node reached
      twice through an alias, an unhashable key) makes the standard constructor build
      the whole document, errors and all.
    """

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._tags: dict[tuple[str, Any], str] = {}
        self._scalars = {
            _INT: self.construct_yaml_int,
            _FLOAT: self.construct_yaml_float,
            _BOOL: self.construct_yaml_bool,
            _NULL: self.construct_yaml_null,
        }

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is not yaml.ScalarNode or self.yaml_path_resolvers:
            return super().resolve(kind, value, implicit)
        key = (value, implicit)
        tag = self._tags.get(key)
        if tag is None:
            if len(self._tags) > 50_000:  # a huge file of distinct values: stay bounded
                self._tags.clear()
            tag = self._tags[key] = super().resolve(kind, value, implicit)
        return tag

    def construct_document(self, node: Any) -> Any:
        try:
            return self._build(node, set())
        except _Slow:
            return super().construct_document(node)

    def _build(self, node: Any, seen: set[int]) -> Any:
        kind, tag = type(node), node.tag
        if kind is yaml.ScalarNode:
            if tag == _STR:
                return node.value
            make = self._scalars.get(tag)
            if make is None:
                raise _Slow
            return make(node)
        if id(node) in seen:  # shared through an alias: the standard way keeps it shared
            raise _Slow
        seen.add(id(node))
        if kind is yaml.MappingNode and tag == _MAP:
            data: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag in (_MERGE, _VALUE):
                    raise _Slow
                key = self._build(key_node, seen)
                if type(key) in (dict, list):  # unhashable: the standard error says where
                    raise _Slow
                data[key] = self._build(value_node, seen)
            return data
        if kind is yaml.SequenceNode and tag == _SEQ:
            return [self._build(item, seen) for item in node.value]
        raise _Slow


#: The loader used when none is given, looked up at each call (tests switch it).
SafeLoader: type[Any] = FastLoader

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
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        return YamlProblem(str(exc.problem or exc.context), mark.line + 1 if mark else None)
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1
        return YamlProblem(f"unacceptable character #x{exc.character:04x}: {exc.reason}", line)
    return YamlProblem(str(exc))


def _read(text: str, loader: type[Any]) -> Iterator[tuple[int, Any]]:
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
    loader = loader or SafeLoader
    done = 0
    try:
        for found in _read(text, loader):
            done += 1
            yield found
    except YamlProblem as problem:
        if loader is PythonLoader or problem.problem.startswith(_OWN_PROBLEMS):
            raise
        logger.debug("libyaml failed, reading again with PyYAML: %s", problem)
        for index, found in enumerate(_read(text, PythonLoader)):
            if index >= done:
                yield found


def _load_one(text: str, loader: type[Any]) -> Any:
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
    loader = loader or SafeLoader
    try:
        return _load_one(text, loader)
    except YamlProblem as problem:
        if loader is PythonLoader or problem.problem.startswith(_OWN_PROBLEMS):
            raise
        logger.debug("libyaml failed, reading again with PyYAML: %s", problem)
        return _load_one(text, PythonLoader)


def _path_parts(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for piece in re.findall(r"\[(\d+)\]|([^.\[\]]+)", path):
        parts.append(int(piece[0]) if piece[0] else piece[1])
    return parts


def node_line(root: yaml.Node, path: str) -> int:
    """The line (1-based) of what ``path`` (``spec.env.A``, ``metadata.labels[0]``) names
    under ``root``: the key of a mapping entry, an item of a list, or the deepest node that
    exists on the way (a missing key is reported where its mapping is)."""
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
    found: dict[int, yaml.Node] = {}
    try:
        reader = (loader or SafeLoader)(text)
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
