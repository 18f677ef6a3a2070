"""Values substituted into ``shell/v1`` commands reach the shell as data (issue 12, item 1).

Through the real CLI (``python -m opus``) with the installed opus-shell and opus-http
plugins: a ``--var`` holding ``$(touch PWNED)`` and a JSON body served by a local HTTP
endpoint (an ``http/v1`` task's ``json`` output) must not run anything.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from helpers_shell import apply, opus, pwned, shell_task, write

pytest.importorskip("opus_shell", reason="needs the opus-shell plugin installed")

ATTACK = "$(touch PWNED); touch PWNED2 `touch PWNED3` \"'$(touch PWNED4)'\""


def test_a_var_value_is_data_in_every_quoting_context(tmp_path: Path) -> None:
    commands = {
        "plain": "printf '%s\\n' ${VAR:who}",
        "double": 'printf "%s\\n" "${VAR:who}"',
        "single": "printf '%s\\n' '${VAR:who}'",
        "subshell": "x=$(printf '%s' ${VAR:who}); printf '%s\\n' \"$x\"",
        "in_double_subshell": 'printf "%s\\n" "$(printf "%s" "${VAR:who}")"',
    }
    write(tmp_path, *(shell_task(n, {"create": c}) for n, c in commands.items()))
    result = apply(tmp_path, "--var", f"who={ATTACK}")
    assert pwned(tmp_path) == []
    for name in commands:
        task = result["tasks"][name]
        assert task["status"] == "done", task
        assert task["outputs"]["stdout"] == ATTACK, name


def test_the_issue_example_creates_no_file(tmp_path: Path) -> None:
    write(tmp_path, shell_task("hello", {"create": "echo hello ${VAR:who}"}))
    result = apply(tmp_path, "--var", "who=$(touch PWNED)")
    assert pwned(tmp_path) == []
    assert result["tasks"]["hello"]["outputs"]["stdout"] == "hello $(touch PWNED)"


def test_a_command_that_is_one_reference_is_one_quoted_word(tmp_path: Path) -> None:
    write(tmp_path, shell_task("whole", {"create": "${VAR:cmd}"}))
    result = apply(tmp_path, "--var", "cmd=touch PWNED")
    assert pwned(tmp_path) == []
    assert result["tasks"]["whole"]["status"] in ("failed", "rolled_back")
    assert "not found" in result["tasks"]["whole"]["error"]


def test_raw_references_opt_out_pastes_the_value(tmp_path: Path) -> None:
    write(tmp_path, shell_task("raw", {"create": "${VAR:cmd}", "rawReferences": True}))
    result = apply(tmp_path, "--var", "cmd=touch PWNED")
    assert result["tasks"]["raw"]["status"] == "done"
    assert pwned(tmp_path) == ["PWNED"]


def test_a_reference_in_a_heredoc_is_refused(tmp_path: Path) -> None:
    write(tmp_path, shell_task("doc", {"create": "cat <<EOF\n${VAR:who}\nEOF"}))
    result = apply(tmp_path, "--var", "who=$(touch PWNED)")
    assert pwned(tmp_path) == []
    task = result["tasks"]["doc"]
    assert task["status"] == "failed"
    assert "here-document" in task["error"] and "spec.create" in task["error"]


def test_env_passes_values_unquoted_as_data(tmp_path: Path) -> None:
    spec = {"env": {"WHO": "${VAR:who}"}, "create": 'printf "%s" "$WHO"'}
    write(tmp_path, shell_task("env", spec))
    result = apply(tmp_path, "--var", f"who={ATTACK}")
    assert pwned(tmp_path) == []
    assert result["tasks"]["env"]["outputs"]["stdout"] == ATTACK


def test_the_stored_spec_holds_the_quoted_command(tmp_path: Path) -> None:
    """delete runs the recorded command: it must be the quoted one."""
    write(tmp_path, shell_task("rm", {"create": "true", "delete": "echo bye ${VAR:who}"}))
    apply(tmp_path, "--var", "who=$(touch PWNED)")
    shown = opus(tmp_path, "state", "show", "rm", "--state", "sqlite:///s.db", "-o", "json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["applied_spec"]["delete"] == "echo bye '$(touch PWNED)'"
    plan = opus(
        tmp_path,
        "plan",
        "-f",
        "tasks.yaml",
        "--state",
        "sqlite:///s.db",
        "--var",
        "who=$(touch PWNED2)",
        "-o",
        "json",
    )
    assert plan.returncode == 3, plan.stderr
    changed = json.loads(plan.stdout)["tasks"]["rm"]["diff"]["changed"]["delete"]
    assert changed == ["echo bye '$(touch PWNED)'", "echo bye '$(touch PWNED2)'"]
    done = opus(
        tmp_path,
        "delete",
        "-f",
        "tasks.yaml",
        "--state",
        "sqlite:///s.db",
        "--var",
        "who=$(touch PWNED)",
        "--yes",
        "-o",
        "json",
    )
    assert done.returncode == 0, done.stderr
    assert pwned(tmp_path) == []


class _JsonEndpoint(BaseHTTPRequestHandler):
    body = json.dumps({"name": "$(touch PWNED)", "list": ["`touch PWNED2`", "a'b"]}).encode()

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _JsonEndpoint)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_an_endpoint_json_body_used_in_a_command_creates_no_file(
    tmp_path: Path, endpoint: str
) -> None:
    pytest.importorskip("opus_http", reason="needs the opus-http plugin installed")
    api = {
        "apiVersion": "http/v1",
        "kind": "Endpoint",
        "metadata": {"name": "api"},
        "spec": {"url": endpoint, "create": {"method": "POST", "json": {"x": 1}}},
    }
    use = shell_task(
        "use",
        {"create": ["echo ${VAR:api:json}", "printf '%s' ${VAR:api:json}"]},
    )
    write(tmp_path, api, use)
    result = apply(tmp_path)
    assert result["tasks"]["api"]["status"] == "done", result
    assert result["tasks"]["use"]["status"] == "done", result
    assert pwned(tmp_path) == []
    body = json.loads(_JsonEndpoint.body)
    echoed, printed = result["tasks"]["use"]["outputs"]["stdout"].split("\n", 1)
    assert json.loads(echoed) == body and json.loads(printed) == body
