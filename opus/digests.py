"""The two hashes opus uses, without importing :mod:`hashlib`.

``import hashlib`` loads OpenSSL (a few milliseconds of every ``opus`` start) to offer every
algorithm; opus needs sha256 (checksums, cache keys) and blake2b (cache entries), which the
interpreter also builds in. The standard library's :mod:`random` takes its sha512 the same
way. An interpreter built without them falls back to :mod:`hashlib`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hashlib import blake2b, sha256
else:
    try:
        from _sha256 import sha256
    except ImportError:  # Python 3.12+ names the module _sha2
        try:
            from _sha2 import sha256
        except ImportError:
            from hashlib import sha256
    try:
        from _blake2 import blake2b
    except ImportError:
        from hashlib import blake2b

__all__ = ["blake2b", "sha256"]
