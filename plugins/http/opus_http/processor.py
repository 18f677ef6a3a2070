"""``HttpProcessor``: the ``http/v1`` processor."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from opus import OpusError, Result, Task, TaskContext, TaskProcessor
from opus.variables import Placement

from .client import HttpRequestError, Response, send
from .download import ChecksumMismatch, download, local_file
from .references import UnsafeReference, check_header_value, render_in_url
from .spec import REQUEST_KEYS, SPEC_SCHEMA, HttpSpec, redact_spec

logger = logging.getLogger(__name__)

#: Response body kept in endpoint-mode outputs, in characters.
MAX_BODY = 64 * 1024


class HttpTaskError(OpusError):
    """A download or request failed (after retries); ``status`` is the HTTP status if any."""

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class HttpProcessor(TaskProcessor):
    """Downloads a file (``spec.path`` set) or calls an endpoint per action.

    Download mode: create/update fetch ``url`` into ``path`` atomically (skipped when the
    file already has ``sha256``), delete removes the file, drift means the file is missing
    or its checksum changed. Endpoint mode: each action sends its request (``update``
    falls back to ``create``; ``delete``/``rollback`` without one do nothing); drift sends
    ``check`` and reports drift when the status is not the expected one.
    """

    api_version = "http/v1"
    spec_schema = SPEC_SCHEMA

    def create(self, task: Task, ctx: TaskContext) -> Result:
        """Download, or send ``spec.create``."""
        spec = HttpSpec.parse(task.name, ctx.spec, ctx.secrets)
        if spec.download:
            return _download(task, ctx, spec)
        return _call(task, ctx, spec, "create")

    def update(self, task: Task, ctx: TaskContext) -> Result:
        """Download again, or send ``spec.update`` (``spec.create`` when there is none)."""
        spec = HttpSpec.parse(task.name, ctx.spec, ctx.secrets)
        if spec.download:
            return _download(task, ctx, spec)
        return _call(task, ctx, spec, "update" if "update" in spec.requests else "create")

    def delete(self, task: Task, ctx: TaskContext) -> Result:
        """Remove the downloaded file, or send ``spec.delete`` (nothing without one)."""
        spec = HttpSpec.parse(task.name, ctx.spec, ctx.secrets)
        if spec.download:
            assert spec.path is not None
            if not spec.path.exists():
                return Result(message=f"{spec.path} already absent")
            spec.path.unlink()
            ctx.logger.info("removed %s", spec.path)
            return Result(message=f"removed {spec.path}")
        if "delete" not in spec.requests:
            return Result(message="no delete request; nothing to do")
        return _call(task, ctx, spec, "delete")

    def describe(self, task: Task, ctx: TaskContext) -> Result:
        """The local file (no network), or the response to ``spec.describe``."""
        spec = HttpSpec.parse(task.name, ctx.spec, ctx.secrets)
        if spec.download:
            assert spec.path is not None
            info = local_file(spec.path)
            details = {
                "path": str(info.path),
                "exists": info.exists,
                "sha256": info.sha256,
                "size": info.size,
            }
            return Result(details=details)
        if "describe" not in spec.requests:
            return Result(outputs=dict(ctx.state.outputs) if ctx.state else {})
        return _call(task, ctx, spec, "describe")

    def detect_drift(self, task: Task, ctx: TaskContext) -> Result:
        """Download mode: missing file or changed sha256. Endpoint mode: ``check``'s status."""
        spec = HttpSpec.parse(task.name, ctx.spec, ctx.secrets)
        if spec.download:
            return _file_drift(spec, ctx)
        if "check" not in spec.requests:
            return Result(drifted=False, message="no check request: resource drift not checked")
        try:
            result = _call(task, ctx, spec, "check")
        except HttpTaskError as exc:
            if exc.status is None or exc.status >= 500:
                raise
            return Result(
                drifted=True,
                message=f"check returned HTTP {exc.status}",
                details={"status": exc.status},
            )
        return Result(
            drifted=False,
            message=f"check returned HTTP {result.outputs['status']}",
            details=dict(result.outputs),
        )

    def rollback(self, task: Task, ctx: TaskContext) -> Result:
        """Endpoint mode: send ``spec.rollback``. Downloads need none (writes are atomic)."""
        spec = HttpSpec.parse(task.name, ctx.spec, ctx.secrets)
        if spec.download:
            return Result(message="nothing to undo: a failed download leaves the previous file")
        if "rollback" not in spec.requests:
            ctx.logger.warning(
                "no rollback request; %s left as it is", ctx.failed_action or "action"
            )
            return Result(message="no rollback request")
        return _call(task, ctx, spec, "rollback")

    def redact(self, spec: Mapping[str, Any]) -> Mapping[str, Any]:
        """A copy of ``spec`` with sensitive headers and URL passwords as ``***``."""
        return redact_spec(spec)

    def render_reference(
        self, spec: Mapping[str, Any], placement: Placement, value: Any
    ) -> str | None:
        """Write a value referenced in a URL so it cannot change the request's origin, and
        refuse line breaks in header values (see :mod:`opus_http.references`)."""
        keys = placement.path.split(".")
        if keys[1:2] and keys[1] in REQUEST_KEYS:
            keys = keys[:1] + keys[2:]
        try:
            if keys == ["spec", "url"]:
                return render_in_url(placement.text, placement.start, value)
            if keys[:2] == ["spec", "headers"]:
                check_header_value(value)
        except UnsafeReference as exc:
            raise OpusError(f"{placement.path}: {exc}") from None
        return None


def _download(task: Task, ctx: TaskContext, spec: HttpSpec) -> Result:
    try:
        response, info = download(spec, cancelled=ctx.cancelled)
    except (HttpRequestError, ChecksumMismatch) as exc:
        raise HttpTaskError(
            f"task {task.name!r}: {spec.mask(str(exc))}", getattr(exc, "status", None)
        ) from None
    ctx.logger.info(
        "%s: %s (%d bytes)", spec.path, "downloaded" if response else "up to date", info.size
    )
    outputs = {
        "path": str(info.path),
        "sha256": info.sha256,
        "size": info.size,
        "url": spec.mask(spec.url or ""),
        "status": response.status if response else None,
        "headers": response.kept_headers() if response else {},
    }
    return Result(outputs=outputs, resource_checksum=info.sha256)


def _file_drift(spec: HttpSpec, ctx: TaskContext) -> Result:
    assert spec.path is not None
    state_path = ctx.state.outputs.get("path") if ctx.state else None
    info = local_file(spec.path)
    expected = spec.sha256 or (ctx.state.outputs.get("sha256") if ctx.state else None)
    details = {"path": str(spec.path), "expected": expected, "actual": info.sha256}
    if state_path and state_path != str(spec.path):
        details["recorded_path"] = state_path
    if not info.exists:
        return Result(drifted=True, message=f"{spec.path} is missing", details=details)
    if expected and info.sha256 != expected:
        return Result(drifted=True, message=f"sha256 of {spec.path} changed", details=details)
    return Result(drifted=False, message="in sync", details=details)


def _call(task: Task, ctx: TaskContext, spec: HttpSpec, key: str) -> Result:
    request = spec.requests[key]
    ctx.logger.info("%s: %s %s", key, request.method, spec.mask(request.url))
    try:
        response = send(
            request,
            retries=spec.retries,
            backoff=spec.backoff,
            timeout=spec.timeout,
            describe=spec.mask,
            max_body=spec.max_body,
            cancelled=ctx.cancelled,
        )
    except HttpRequestError as exc:
        raise HttpTaskError(
            f"task {task.name!r}: {key}: {spec.mask(str(exc))}", exc.status
        ) from None
    return Result(outputs=_outputs(spec, request.url, response))


def _outputs(spec: HttpSpec, url: str, response: Response) -> dict[str, Any]:
    text = spec.mask(response.body.decode(errors="replace"))
    outputs: dict[str, Any] = {
        "status": response.status,
        "headers": response.kept_headers(),
        "url": spec.mask(url),
        "body": text if len(text) <= MAX_BODY else text[:MAX_BODY],
    }
    if "json" in response.headers.get("content-type", "") or text.lstrip()[:1] in ("{", "["):
        try:
            # parsed from the masked text, then masked again: a secret written with JSON
            # escapes (``\\/``, ``\\u0061``) is caught whichever way it was written
            outputs["json"] = spec.mask_data(json.loads(text))
        except ValueError:
            pass
    outputs["headers"] = spec.mask_data(outputs["headers"])
    return outputs
