"""``opus validate`` and ``opus graph``: look at tasks without running them or touching state."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from ..errors import OpusError
from .errors import EXIT_USAGE, cli_message, handle_errors
from .options import manifest_options, output_option
from .session import Session

if TYPE_CHECKING:
    from ..graph import TaskGraph


def _graph(
    session: Session,
    command: str,
    files: tuple[str, ...],
    context: str,
    var_pairs: tuple[str, ...],
    values_files: tuple[str, ...],
    targets: tuple[str, ...],
    excludes: tuple[str, ...],
    disabled: tuple[str, ...],
) -> TaskGraph:
    """Load, validate and order the tasks as ``command`` would (every problem at once)."""
    from ..engine import Engine
    from .inputs import check, read_inputs

    session.disable(list(disabled))
    inputs = read_inputs(files, context, var_pairs, values_files)
    engine = Engine(state="memory://", plugins=session.plugins())
    return check(engine, command, inputs, context, targets, excludes)


_command_option = click.option(
    "--command",
    "command",
    default="apply",
    show_default=True,
    help="As this command sees the tasks (scopes and conditional dependencies depend on it).",
)


@click.command()
@manifest_options
@_command_option
@output_option("text", "json")
@click.pass_obj
@handle_errors
def validate(session: Session, /, command: str, output: str, **inputs: Any) -> None:
    """Load, validate and order the tasks; touch no state, run nothing.

    Exit 0 when valid, 2 listing every problem otherwise.
    """
    from .inputs import problems_of

    try:
        graph = _graph(session, command, **inputs)
    except OpusError as exc:
        if output != "json":
            raise
        click.echo(
            json.dumps({"ok": False, "problems": [cli_message(p) for p in problems_of(exc)]})
        )
        sys.exit(EXIT_USAGE)
    if output == "json":
        click.echo(
            json.dumps(
                {
                    "ok": True,
                    "command": command,
                    "context": inputs["context"],
                    "tasks": graph.order,
                    "out_of_scope": graph.out_of_scope,
                    "problems": [],
                }
            )
        )
    else:
        click.echo(
            f"ok: {len(graph.order)} task(s) valid for {command!r} in context "
            f"{inputs['context']!r} ({len(graph.out_of_scope)} out of scope)"
        )


def _mermaid_label(text: str) -> str:
    return text.replace('"', "#quot;")


def _dot_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _edges(graph: TaskGraph) -> list[tuple[str, str]]:
    """``(dependency, dependent)`` pairs in processing order."""
    return [
        (dep, name)
        for name in graph.order
        for dep in sorted(graph.dependencies[name], key=graph.order.index)
    ]


def render_graph(graph: TaskGraph, fmt: str) -> str:
    """The graph as text, mermaid or dot (edges point from a dependency to its dependent)."""
    skipped = ", ".join(graph.out_of_scope)
    if fmt == "text":
        lines = []
        for name in graph.order:
            deps = sorted(graph.dependencies[name], key=graph.order.index)
            lines.append(name + (f" <- {', '.join(deps)}" if deps else ""))
        if skipped:
            lines.append(f"# out of scope: {skipped}")
        return "\n".join(lines)
    if fmt == "mermaid":
        ids = {name: f"n{i}" for i, name in enumerate(graph.order)}
        lines = ["graph TD"]
        lines += [
            f'    {ids[n]}["{_mermaid_label(n)} ({_mermaid_label(graph.tasks[n].kind)})"]'
            for n in graph.order
        ]
        lines += [f"    {ids[a]} --> {ids[b]}" for a, b in _edges(graph)]
        if skipped:
            lines.append(f"    %% out of scope: {skipped}")
        return "\n".join(lines)
    lines = ["digraph opus {", "    rankdir=LR;", "    node [shape=box];"]
    for name in graph.order:
        label = _dot_string(f"{name}\n{graph.tasks[name].kind}")
        lines.append(f"    {_dot_string(name)} [label={label}];")
    lines += [f"    {_dot_string(a)} -> {_dot_string(b)};" for a, b in _edges(graph)]
    if skipped:
        lines.append(f"    // out of scope: {skipped}")
    lines.append("}")
    return "\n".join(lines)


@click.command()
@manifest_options
@_command_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "mermaid", "dot"]),
    default="text",
    show_default=True,
    help="text, mermaid (flowchart) or dot (Graphviz).",
)
@click.pass_obj
@handle_errors
def graph(session: Session, /, command: str, fmt: str, **inputs: Any) -> None:
    """Print the dependency graph for a command and context (scopes, --target and
    --exclude applied); edges point from a dependency to its dependent."""
    click.echo(render_graph(_graph(session, command, **inputs), fmt))
