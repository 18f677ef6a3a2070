"""Names a package exports but imports only when they are first used (PEP 562).

A package that re-exports what its modules define (``opus`` itself, a plugin package
exporting its processor) would import all of them at once; with :func:`lazy_exports` each
module is imported when one of its names is first asked for, so that an ``import`` of the
package (or a command that needs none of it) stays cheap::

    _EXPORTS = {"HelloWorldProcessor": ".processor"}
    __getattr__ = lazy_exports(__name__, _EXPORTS)
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``exports`` maps each name to the module
    (relative to ``package``, or absolute) it comes from. A name found is kept in the
    package's namespace, so later look-ups skip the function."""
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value
        return value

    return __getattr__
