"""``opus validate`` and ``opus graph``: look at tasks without running them."""

from __future__ import annotations

import json

import click

from ..engine import Engine
from ..graph import TaskGraph
from .errors import handle_errors
from .options import manifest_options, output_option, read_inputs
from .session import Session


def _graph(session: Session, command: str, files: tuple[str, ...], context: str,
           var_pairs: tuple[str, ...], values_files: tuple[str, ...], targets: tuple[str, ...],
           excludes: tuple[str, ...], disabled: tuple[str, ...]) -> TaskGraph:
    session.disable(list(disabled))
    tasks, variables = read_inputs(files, context, var_pairs, values_files)
    engine = Engine(state="memory://", plugins=session.plugins())
    return engine.validate(command, tasks, context, variables, targets=targets, excludes=excludes)


@click.command()
@manifest_options
@click.option("--command", "command", default="apply", show_default=True,
              help="Validate as for this command (scopes and conditions depend on it).")
@output_option("text", "json")
@click.pass_obj
@handle_errors
def validate(session: Session, command: str, output: str, **inputs: object) -> None:
    """Load, validate and order the tasks; touch no state, run nothing. Exit 0 or 2."""
    graph = _graph(session, command, **inputs)  # type: ignore[arg-type]
    if output == "json":
        click.echo(json.dumps({"ok": True, "tasks": graph.order,
                               "out_of_scope": graph.out_of_scope}))
    else:
        click.echo(f"ok: {len(graph.order)} task(s) valid for {command!r} "
                   f"({len(graph.out_of_scope)} out of scope)")


def render_graph(graph: TaskGraph, fmt: str) -> str:
    """The graph as text, mermaid or dot (edges point from a dependency to its dependent)."""
    if fmt == "text":
        lines = []
        for name in graph.order:
            deps = sorted(graph.dependencies[name], key=graph.order.index)
            lines.append(f"{name}" + (f" <- {', '.join(deps)}" if deps else ""))
        return "\n".join(lines)
    if fmt == "mermaid":
        ids = {name: f"n{i}" for i, name in enumerate(graph.order)}
        lines = ["graph TD"]
        lines += [f'    {ids[n]}["{n} ({graph.tasks[n].kind})"]' for n in graph.order]
        for name in graph.order:
            for dep in sorted(graph.dependencies[name], key=graph.order.index):
                lines.append(f"    {ids[dep]} --> {ids[name]}")
        return "\n".join(lines)
    lines = ["digraph opus {", "    rankdir=LR;"]
    for name in graph.order:
        label = f"{name}\\n{graph.tasks[name].kind}"
        lines.append(f'    {json.dumps(name)} [label="{label}"];')
    for name in graph.order:
        for dep in sorted(graph.dependencies[name], key=graph.order.index):
            lines.append(f"    {json.dumps(dep)} -> {json.dumps(name)};")
    lines.append("}")
    return "\n".join(lines)


@click.command()
@manifest_options
@click.option("--command", "command", default="apply", show_default=True,
              help="Show the graph as this command sees it.")
@click.option("--format", "fmt", type=click.Choice(["text", "mermaid", "dot"]), default="text",
              show_default=True)
@click.pass_obj
@handle_errors
def graph(session: Session, command: str, fmt: str, **inputs: object) -> None:
    """Print the dependency graph for a command and context (scopes applied)."""
    click.echo(render_graph(_graph(session, command, **inputs), fmt))  # type: ignore[arg-type]
