"""``opus state ...`` and ``opus runs ...``: read and repair recorded state."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from ..errors import CommandError, NotFoundError
from ..state.base import StateBackend, pid_alive, this_host
from .confirm import confirm_change, confirm_every_context
from .errors import EXIT_FAILED, handle_errors
from .options import (
    Seconds,
    context_option,
    output_option,
    show_sensitive_option,
    state_option,
    yes_option,
)
from .output import console_for
from .session import Session

if TYPE_CHECKING:
    from ..model import TaskState


def when(timestamp: float | None) -> str:
    if timestamp is None:
        return ""
    return dt.datetime.fromtimestamp(timestamp).isoformat(sep=" ", timespec="seconds")


@contextmanager
def open_state(session: Session, url: str, *, create: bool = False) -> Iterator[StateBackend]:
    """The backend at ``url``; unless ``create``, one that does not exist yet is an error
    (reading must not leave an empty state file behind)."""
    backend = session.plugins().state_backend(url)
    try:
        if not create and not backend.exists():
            raise NotFoundError(
                f"no state found at {url}: nothing has been recorded there yet "
                "(run a command first, or point --state at an existing state)"
            )
        yield backend
    finally:
        backend.close()


def _json(data: Any) -> None:
    click.echo(json.dumps(data, default=str))


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.table import Table  # imported when a table is shown: start-up stays quick
    from rich.text import Text

    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        # Text, not str: recorded values are shown as they are, never as rich markup or
        # emoji codes (an error mentioning "${VAR:a:id}" or "[red]" must survive).
        table.add_row(*(Text("" if v is None else str(v)) for v in row))
    console_for(sys.stdout).print(table)


@click.group()
def state() -> None:
    """Inspect and repair recorded task state."""


def _record_dict(
    session: Session,
    record: TaskState,
    show_sensitive: bool,
    recorded: Callable[[str], TaskState | None],
) -> dict[str, Any]:
    """A record as a dict, unless ``show_sensitive`` with its sensitive outputs masked, and
    in its applied spec the sensitive outputs of the tasks it depends on (``recorded``)."""
    data = record.to_dict()
    if not show_sensitive:
        from ..outputs import masked_outputs
        from ..secret_refs import recorded_masker

        registry = session.plugins().processors()
        data["outputs"] = masked_outputs(record.api_version, record.outputs, registry)
        masker = recorded_masker(record, recorded, registry)
        if masker is not None:
            data["applied_spec"] = masker.data(data["applied_spec"])
    return data


@state.command("list")
@context_option
@state_option
@output_option("text", "json")
@show_sensitive_option
@click.pass_obj
@handle_errors
def state_list(
    session: Session, context: str, state_url: str, output: str, show_sensitive: bool
) -> None:
    """Every task recorded in a context (JSON: whole records, sensitive outputs masked)."""
    with open_state(session, state_url) as backend:
        records = backend.list_records(context)
    if output == "json":
        by_name = {r.name: r for r in records}
        _json([_record_dict(session, r, show_sensitive, by_name.get) for r in records])
        return
    if not records:
        click.echo(f"no tasks recorded in context {context}")
        return
    _table(
        f"state of context {context}",
        ["task", "apiVersion", "status", "updated", "run"],
        [[r.name, r.api_version, r.status, when(r.updated_at), r.run_id] for r in records],
    )


@state.command("show")
@click.argument("name")
@context_option
@state_option
@output_option("text", "json")
@show_sensitive_option
@click.pass_obj
@handle_errors
def state_show(
    session: Session, name: str, context: str, state_url: str, output: str, show_sensitive: bool
) -> None:
    """One task's stored record (sensitive outputs masked)."""
    with open_state(session, state_url) as backend:
        record = backend.get(context, name)
        if record is None:
            raise NotFoundError(f"no task {name!r} in the state of context {context!r}")
        data = _record_dict(
            session, record, show_sensitive, lambda other: backend.get(context, other)
        )
    if output == "json":
        _json(data)
        return
    for key in ("created_at", "updated_at"):
        data[key] = when(data[key])
    _table(
        f"{name} in context {context}",
        ["field", "value"],
        [
            [k, json.dumps(v, default=str) if isinstance(v, (dict, list)) else v]
            for k, v in data.items()
        ],
    )


@state.command("history")
@click.argument("name")
@context_option
@state_option
@click.option("--limit", type=int, default=50, show_default=True)
@output_option("text", "json")
@click.pass_obj
@handle_errors
def state_history(
    session: Session, name: str, context: str, state_url: str, limit: int, output: str
) -> None:
    """What happened to one task, newest first."""
    with open_state(session, state_url) as backend:
        entries = backend.history(context, name, limit)
        if (
            not entries
            and not backend.history(context, name, 1)
            and (backend.get(context, name) is None)
        ):
            raise NotFoundError(f"no history for task {name!r} in context {context!r}")
    if output == "json":
        _json([e.to_dict() for e in entries])
        return
    if not entries:
        click.echo(f"no history for task {name} in context {context}")
        return
    _table(
        f"history of {name} in context {context}",
        ["when", "run", "action", "status", "duration", "error"],
        [
            [
                when(e.at),
                e.run_id,
                e.action,
                e.status,
                f"{e.duration_s:.2f}s" if e.duration_s is not None else "",
                e.error,
            ]
            for e in entries
        ],
    )


@state.command("rm")
@click.argument("names", nargs=-1, required=True)
@context_option
@state_option
@yes_option()
@click.pass_obj
@handle_errors
def state_rm(
    session: Session, names: tuple[str, ...], context: str, state_url: str, assume_yes: bool
) -> None:
    """Forget tasks (the real resources are left alone)."""
    confirm_change(session, "state rm", context, assume_yes)
    missing = []
    with open_state(session, state_url) as backend:
        for name in names:
            if backend.remove(context, name):
                click.echo(f"removed {name} from the state of context {context}")
            else:
                missing.append(name)
    if missing:
        raise NotFoundError(f"not in the state of context {context!r}: {', '.join(missing)}")


@state.command("unlock")
@context_option
@state_option
@click.option(
    "--force", is_flag=True, help="Unlock even when the run holding the lock is still running."
)
@yes_option()
@click.pass_obj
@handle_errors
def state_unlock(
    session: Session, context: str, state_url: str, force: bool, assume_yes: bool
) -> None:
    """Free a context's lock left by a run that is gone."""
    confirm_change(session, "state unlock", context, assume_yes)
    with open_state(session, state_url) as backend:
        holder = backend.get_lock(context)
        if holder is None:
            click.echo(f"context {context} is not locked")
            return
        if not force and holder.host == this_host() and pid_alive(holder.pid):
            raise CommandError(
                f"context {context!r} is locked by {holder.describe()}, which is still "
                "running on this host; stop it (or pass --force to unlock anyway)"
            )
        backend.unlock(context)
    click.echo(f"unlocked context {context} (was held by {holder.describe()})")


@state.command("prune")
@click.option(
    "--keep",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="Runs to keep per context.",
)
@state_option
@yes_option()
@click.pass_obj
@handle_errors
def state_prune(session: Session, keep: int, state_url: str, assume_yes: bool) -> None:
    """Forget old runs and their history (task records, and a run going on, are kept)."""
    confirm_every_context(session, "state prune", assume_yes)
    with open_state(session, state_url) as backend:
        removed = backend.prune(keep)
    click.echo(f"pruned {removed} run(s)")


def _no_run(backend: StateBackend, run_id: str) -> str:
    """Why ``run_id`` names no run: nothing matches, or it is a prefix of several ids."""
    matches = [r.run_id for r in backend.list_runs(limit=1_000_000) if r.run_id.startswith(run_id)]
    if len(matches) > 1:
        shown = ", ".join(matches[:5]) + (", ..." if len(matches) > 5 else "")
        return f"run id prefix {run_id!r} is ambiguous: it matches {len(matches)} runs ({shown})"
    return f"no run {run_id!r} (see 'opus runs list')"


#: The order of a run summary's counts (others follow alphabetically).
_SUMMARY_ORDER = ("done", "drifted", "in_sync", "unknown", "planned", "unchanged")


def summary_text(summary: dict[str, int] | Any) -> str:
    """``1 drifted, 1 in sync`` from a run record's summary."""
    order = {key: i for i, key in enumerate(_SUMMARY_ORDER)}
    keys = sorted(summary, key=lambda k: (order.get(k, len(order)), k))
    return ", ".join(f"{summary[k]} {str(k).replace('_', ' ')}" for k in keys)


@click.group()
def runs() -> None:
    """The run history."""


@runs.command("list")
@click.option("--context", "-c", default=None, help="Only runs of this context.")
@click.option("--limit", type=int, default=20, show_default=True)
@state_option
@output_option("text", "json")
@click.pass_obj
@handle_errors
def runs_list(
    session: Session, context: str | None, limit: int, state_url: str, output: str
) -> None:
    """Recent runs, newest first."""
    with open_state(session, state_url) as backend:
        records = backend.list_runs(context, limit)
    if output == "json":
        _json([r.to_dict() for r in records])
        return
    if not records:
        click.echo(f"no runs recorded{f' in context {context}' if context else ''}")
        return
    _table(
        "runs",
        ["run", "context", "command", "status", "started", "took", "summary"],
        [
            [
                r.run_id,
                r.context,
                r.command,
                r.status,
                when(r.started_at),
                f"{r.finished_at - r.started_at:.2f}s" if r.finished_at else "",
                summary_text(r.summary),
            ]
            for r in records
        ],
    )


@runs.command("show")
@click.argument("run_id")
@state_option
@output_option("text", "json")
@click.option(
    "--html",
    "html_path",
    metavar="FILE",
    type=click.Path(),
    help="Write a self-contained HTML report (timeline, dependency graph, errors) to FILE.",
)
@click.pass_obj
@handle_errors
def runs_show(
    session: Session, run_id: str, state_url: str, output: str, html_path: str | None
) -> None:
    """One run and what it did to each task."""
    from .report_out import check_report_path, write_report

    target = check_report_path(html_path, "--html")
    with open_state(session, state_url) as backend:
        record = backend.get_run(run_id)
        if record is None:
            raise NotFoundError(_no_run(backend, run_id))
        entries = backend.run_entries(record.run_id)
        stored = backend.run_report(record.run_id) if target is not None else None
    if target is not None:
        from ..report import from_state

        write_report(from_state(record, entries, stored), target, "--html")
    if output == "json":
        _json({**record.to_dict(), "entries": [e.to_dict() for e in entries]})
        return
    click.echo(
        f"run {record.run_id}: {record.command} in context {record.context}, "
        f"{record.status}, started {when(record.started_at)} by {record.user}@{record.host}"
    )
    _table(
        "tasks",
        ["task", "action", "status", "duration", "error"],
        [
            [
                e.name,
                e.action,
                e.status,
                f"{e.duration_s:.2f}s" if e.duration_s is not None else "",
                e.error,
            ]
            for e in entries
        ],
    )
    if record.status == "failed":
        sys.exit(EXIT_FAILED)


@state.command("migrate")
@click.option("--from", "source_url", required=True, metavar="URL", help="Where state is now.")
@click.option(
    "--to",
    "target_url",
    required=True,
    metavar="URL",
    help="An empty backend to copy it to (e.g. postgresql://...).",
)
@click.option(
    "--lock-timeout",
    type=Seconds(zero=True),
    default=0.0,
    show_default=True,
    metavar="SECONDS",
    help="Wait this long for runs holding a context lock (at most 604800, a week).",
)
@output_option("text", "json")
@click.pass_obj
@handle_errors
def state_migrate(
    session: Session, source_url: str, target_url: str, lock_timeout: float, output: str
) -> None:
    """Copy every record, run and history entry to another backend (source is kept)."""
    from ..state.migrate import migrate_state

    with (
        open_state(session, source_url) as source,
        open_state(session, target_url, create=True) as target,
    ):
        report = migrate_state(source, target, lock_timeout)
    if output == "json":
        _json(
            {
                "contexts": report.contexts,
                "records": report.records,
                "runs": report.runs,
                "entries": report.entries,
            }
        )
        return
    click.echo(
        f"migrated {report.records} record(s), {report.runs} run(s) and "
        f"{report.entries} history entries in context(s) "
        f"{', '.join(report.contexts) or '(none)'}"
    )
