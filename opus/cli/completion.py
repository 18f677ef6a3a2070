"""Shell completion helpers (click does the rest: ``_OPUS_COMPLETE=bash_source opus``)."""

from __future__ import annotations

from typing import Any

import click


def complete_task_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """Task names from the ``-f`` files given so far (nothing when they cannot be read)."""
    from click.shell_completion import CompletionItem  # only when completing (not at start)

    files = ctx.params.get("files") or ()
    if not files:
        return []
    try:
        from ..manifest import collect_tasks

        tasks, _ = collect_tasks(files)
    except Exception:  # completion must never fail loudly
        return []
    return [CompletionItem(t.name) for t in tasks if t.name.startswith(incomplete)]
