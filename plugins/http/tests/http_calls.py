"""Calling the http/v1 processor directly, as the core would, for the http/v1 tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opus_http import HttpProcessor

from opus import Task
from opus.testing import task_context


def call(
    spec: dict,
    action: str = "create",
    ctx_hook: Callable[[Any], None] | None = None,
    secrets: tuple[str, ...] = (),
) -> Any:
    """Run ``action`` of a fresh :class:`HttpProcessor` on an http/v1 task ``api`` with
    ``spec`` (already resolved) and ``ctx.secrets``; ``ctx_hook(ctx)`` may change its
    context first."""
    task = Task(api_version="http/v1", kind="Endpoint", metadata={"name": "api"}, spec=spec)
    ctx = task_context(task, action, run_id="r1", secrets=secrets)
    if ctx_hook is not None:
        ctx_hook(ctx)
    return getattr(HttpProcessor(), action)(task, ctx)
