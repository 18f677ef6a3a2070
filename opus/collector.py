"""Pausing Python's cyclic garbage collector while many long-lived objects are made.

Loading modules, reading manifests and building a run's tasks make tens of thousands of
containers and no garbage cycles; the collector would walk every object made so far again and
again meanwhile. Callers pause it with :func:`paused`, and may :func:`gc.freeze` what they
made before it resumes, so that it is not walked again at all.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused() -> Iterator[bool]:
    """The cyclic collector off inside the block; yields whether it was on (and so is turned
    back on afterwards). Nested use is harmless: an inner block leaves it off."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield collecting
    finally:
        if collecting:
            gc.enable()
