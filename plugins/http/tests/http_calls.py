"""Calling the http/v1 processor directly, as the core would, for the http/v1 tests."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
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


def run_cli(
    tmp_path: Path, spec: dict, *args: str, name: str = "api"
) -> subprocess.CompletedProcess[str]:
    """``python -m opus ARGS`` in ``tmp_path`` with ``t.yaml`` holding one http/v1 task
    ``name`` with ``spec``."""
    doc = {"apiVersion": "http/v1", "kind": "Endpoint", "metadata": {"name": name}, "spec": spec}
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(doc))
    return subprocess.run(
        [sys.executable, "-m", "opus", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
