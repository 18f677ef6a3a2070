"""Download mode: fetch ``url`` into ``path`` atomically, verifying an optional sha256."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from .client import Request, Response, send
from .spec import HttpSpec, split_userinfo

if TYPE_CHECKING:
    from opus import Cancellation

logger = logging.getLogger(__name__)


class ChecksumMismatch(Exception):
    """The downloaded content does not have the sha256 the spec asks for."""


@dataclass(frozen=True)
class LocalFile:
    path: Path
    exists: bool
    sha256: str | None = None
    size: int = 0


def local_file(path: Path) -> LocalFile:
    """The sha256 and size of ``path``, or ``exists=False``."""
    if not path.is_file():
        return LocalFile(path, False)
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 16):
            digest.update(chunk)
            size += len(chunk)
    return LocalFile(path, True, digest.hexdigest(), size)


class _HashingFile:
    """A temp file beside the target that hashes what is written; reset per attempt."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.name: str | None = None
        self.handle: BinaryIO | None = None
        self.digest = hashlib.sha256()

    def open(self) -> _HashingFile:
        self.discard()
        fd, self.name = tempfile.mkstemp(
            prefix=f".{self.target.name}.", suffix=".part", dir=self.target.parent
        )
        self.handle = os.fdopen(fd, "wb")
        self.digest = hashlib.sha256()
        return self

    def write(self, data: bytes) -> int:
        assert self.handle is not None
        self.digest.update(data)
        return self.handle.write(data)

    def commit(self, mode: int | None) -> None:
        assert self.handle is not None and self.name is not None
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        os.chmod(self.name, mode if mode is not None else _default_mode(self.target))
        os.replace(self.name, self.target)
        self.name = None

    def discard(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None
        if self.name is not None:
            try:
                os.unlink(self.name)
            except FileNotFoundError:
                pass
            self.name = None


def _default_mode(target: Path) -> int:
    if target.is_file():
        return target.stat().st_mode & 0o7777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def download(
    spec: HttpSpec, cancelled: Cancellation | None = None
) -> tuple[Response | None, LocalFile]:
    """Make ``spec.path`` hold ``spec.url``'s content; returns the response (``None`` when skipped).

    When ``sha256`` is given and the file already has it, nothing is fetched. The file is
    replaced only after the whole body arrived (and matched ``sha256``), so a failure leaves
    the previous file, or no file, in place.
    """
    assert spec.path is not None and spec.url is not None
    current = local_file(spec.path)
    if spec.sha256 and current.sha256 == spec.sha256:
        logger.info("%s already has sha256 %s; not downloading", spec.path, spec.sha256[:12])
        if spec.mode is not None:
            os.chmod(spec.path, spec.mode)
        return None, current
    spec.path.parent.mkdir(parents=True, exist_ok=True)
    url, headers = split_userinfo(spec.url, spec.headers)
    part = _HashingFile(spec.path)
    try:
        response = send(
            Request("GET", url, headers, sensitive=spec.sensitive_headers),
            retries=spec.retries,
            backoff=spec.backoff,
            timeout=spec.timeout,
            sink=part.open,
            describe=spec.mask,
            max_body=spec.max_body,
            cancelled=cancelled,
        )
        digest = part.digest.hexdigest()
        if spec.sha256 and digest != spec.sha256:
            raise ChecksumMismatch(
                f"{spec.mask(url)}: sha256 is {digest}, expected {spec.sha256}; "
                f"{spec.path} left unchanged"
            )
        part.commit(spec.mode)
    finally:
        part.discard()
    return response, local_file(spec.path)
