"""opus's YAML loader: libyaml's safe loader with shortcuts (imported on first parse).

Kept apart from :mod:`opus.yamlsafe` so that reading manifests from the parse cache, and
every command that reads none, never imports PyYAML.
"""

from __future__ import annotations

from typing import Any

import yaml

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
