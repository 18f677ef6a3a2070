"""Plan readability: attributes on create, line diffs for multi-line text, masked changes
said out loud, one summary line. Real runs (hello-world, a redacting processor), real files."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from helpers_cli import run_opus, write_manifest
from support_processors import RecordingProcessor, make_task

from opus import Engine, Plugins
from opus.cli.plan_view import print_plan


class Secretive(RecordingProcessor):
    """Masks ``token`` in what state keeps and shows."""

    api_version = "secret/v1"

    def redact(self, spec):  # type: ignore[no-untyped-def]
        return {**spec, "token": "***"} if "token" in spec else spec


def text_of(result: Any) -> list[str]:
    out = io.StringIO()
    print_plan(result, {}, stream=out)
    return out.getvalue().splitlines()


def test_a_changed_secret_is_said_not_hidden_and_create_shows_masked_attributes() -> None:
    with Engine(state="memory://", plugins=Plugins(entry_points=False)) as engine:
        engine.register_processor(Secretive())
        v1 = make_task("t", "secret/v1", spec={"value": 1, "token": "s1"})
        created = text_of(engine.run("plan", [v1]))
        assert "  + create t" in created
        assert '      + token = "***"' in created and "      + value = 1" in created
        assert not any("s1" in line for line in created)
        engine.run("apply", [v1])
        v2 = make_task("t", "secret/v1", spec={"value": 1, "token": "s2"})
        plan = engine.run("plan", [v2])
        assert plan.tasks["t"].action == "update"
        assert plan.tasks["t"].diff == {"added": {}, "removed": {}, "changed": {},
                                        "sensitive_changed": ["token"]}  # fmt: skip
        lines = text_of(plan)
        assert lines[lines.index("  ~ update t") + 1] == "      ~ token: (sensitive value changed)"
        assert not any("s2" in line or "s1" in line for line in lines)


def test_multi_line_text_gets_a_line_diff_and_one_summary_line(tmp_path: Path) -> None:
    path = tmp_path / "poem.txt"

    def manifest(content: str) -> Path:
        return write_manifest(
            tmp_path / "t.yaml",
            [{"apiVersion": "hello-world/v1", "kind": "HelloWorld", "metadata": {"name": "p"},
              "spec": {"path": str(path), "content": content}}],
        )  # fmt: skip

    manifest("one\ntwo\nthree\n")
    assert run_opus(tmp_path, "apply", "-f", "t.yaml", plugins=()).returncode == 0
    manifest("one\nTWO\nthree\n")
    plan = run_opus(tmp_path, "plan", "-f", "t.yaml", plugins=())
    assert plan.returncode == 3
    lines = plan.stdout.splitlines()
    at = lines.index("      ~ content:")
    assert lines[at + 1 : at + 6] == [
        "          @@ -1,3 +1,3 @@",
        "           one",
        "          -two",
        "          +TWO",
        "           three",
    ]
    summaries = [line for line in lines if line.startswith(("Plan:", "No changes"))]
    assert len(summaries) == 1 and summaries[0] == lines[-1]
    assert lines[-1].startswith("Plan: 0 to create, 1 to update, 0 to delete. (in ")
    assert not any(" to update in " in line for line in lines), "no second count line"
