"""Turning a command's stdout into task outputs."""

from __future__ import annotations

import json
import re
from typing import Any

_KEY_VALUE = re.compile(r"^([A-Za-z_][A-Za-z0-9_.-]*)=(.*)$")


def parse_stdout(stdout: str) -> dict[str, Any]:
    """Outputs announced on stdout.

    If stdout (stripped) is one JSON object, its keys; otherwise every ``KEY=VALUE`` line
    (later lines win). Other lines are ignored.
    """
    text = stdout.strip()
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if isinstance(value, dict):
            return value
    found: dict[str, Any] = {}
    for line in stdout.splitlines():
        match = _KEY_VALUE.match(line.rstrip("\r"))
        if match:
            found[match.group(1)] = match.group(2)
    return found
