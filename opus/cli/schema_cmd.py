"""``opus schema``: the JSON Schema of a processor's spec, or of a whole manifest document."""

from __future__ import annotations

import json
from typing import Any

import click

from .errors import handle_errors
from .session import Session


def manifest_schema(session: Session) -> dict[str, Any]:
    """One schema for a manifest document with every loaded processor's spec schema."""
    from ..commands import ACTIONS
    from ..manifest_schema import document_schema

    plugins = session.plugins()
    spec_schemas = {api: proc.spec_schema for api, proc in plugins.processors().items()}
    return document_schema(spec_schemas, [*plugins.command_map(), *ACTIONS])


@click.command()
@click.argument("api_version", required=False, metavar="[API_VERSION]")
@click.pass_obj
@handle_errors
def schema(session: Session, api_version: str | None) -> None:
    """Print a JSON Schema (draft 2020-12).

    With API_VERSION: the schema of that processor's spec. Without: one schema for a whole
    manifest document (metadata included; apiVersion selects the spec schema), for editors:
    `opus schema > opus.schema.json`, then `# yaml-language-server: $schema=opus.schema.json`
    at the top of a manifest.
    """
    from ..specschema import compile_schema

    if api_version is None:
        click.echo(json.dumps(manifest_schema(session), indent=2, default=str))
        return
    processor = session.plugins().processors().get(api_version)
    spec_schema = processor.spec_schema
    if spec_schema is None:
        click.echo(f"{api_version}: this processor declares no spec schema", err=True)
        spec_schema = {"type": "object"}
    compile_schema(spec_schema, f"spec_schema of {api_version}")  # a broken one says so
    click.echo(json.dumps(spec_schema, indent=2, default=str))
