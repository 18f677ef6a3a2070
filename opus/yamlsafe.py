"""Reading YAML safely: the safe loader (libyaml's when available) and a bound on aliases.

An alias (``*name``) repeats a whole anchored node; nested aliases multiply, so a few hundred
bytes can stand for billions of nodes (a "billion laughs" bomb). Each document is composed
first (aliases stay shared, so this is cheap), its expanded size counted over the node graph,
and only then constructed: a document whose aliases would add more than
:data:`MAX_ALIAS_NODES` nodes, or that refers to itself, is refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import yaml

#: libyaml's loader when PyYAML was built with it (several times faster), else pure Python.
SafeLoader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: How many nodes aliases may add to one document beyond those written out.
MAX_ALIAS_NODES = 100_000


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


#: Where PyYAML's pure-Python scanner words a message unlike libyaml's.
_PYTHON_WORDING = re.compile(r"found character '.*' that cannot start any token")


def _problem(exc: yaml.YAMLError) -> YamlProblem:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = str(exc.problem or exc.context)
        problem = _PYTHON_WORDING.sub("found character that cannot start any token", problem)
        return YamlProblem(problem, mark.line + 1 if mark else None)
    return YamlProblem(str(exc))


def documents(text: str, loader: type[Any] = SafeLoader) -> Iterator[tuple[int, Any]]:
    """``(line, data)`` for each non-empty document of ``text``; :class:`YamlProblem` if
    the YAML is invalid or an alias bomb."""
    anchors = "&" in text  # no anchor, no alias: nothing to count
    reader = loader(text)
    try:
        while reader.check_node():
            node = reader.get_node()
            if node is None:
                continue
            if anchors:
                check_aliases(node)
            yield node.start_mark.line + 1, reader.construct_document(node)
    except yaml.YAMLError as exc:
        raise _problem(exc) from None
    finally:
        reader.dispose()


def load(text: str, loader: type[Any] = SafeLoader) -> Any:
    """The one document of ``text`` (``None`` if empty), like ``yaml.safe_load``."""
    reader = loader(text)
    try:
        node = reader.get_single_node()
        if node is None:
            return None
        if "&" in text:
            check_aliases(node)
        return reader.construct_document(node)
    except yaml.YAMLError as exc:
        raise _problem(exc) from None
    finally:
        reader.dispose()


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


def document_nodes(text: str, loader: type[Any] = SafeLoader) -> dict[int, yaml.Node]:
    """Each document's composed node by the line it starts on (nothing constructed, so
    aliases stay shared); empty if the YAML is invalid."""
    reader = loader(text)
    found: dict[int, yaml.Node] = {}
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
