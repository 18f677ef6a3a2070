"""http/v1 hardening: a referenced value cannot move a request to another origin or break a
header, masking covers JSON-escaped secrets, and ``timeout`` bounds a whole attempt.

Local servers on 127.0.0.1 only (two ports: two origins).
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from functools import partial

import pytest
from http_calls import call, run_cli
from http_local_server import Reply
from opus_http import HttpProcessor, HttpTaskError

from opus import OpusError
from opus.variables import resolve_spec

TOKEN = "abc/def+ghi/jkl=="


def resolve(spec: dict, **variables) -> dict:
    """The spec as the core resolves it for an http/v1 task."""
    render = partial(HttpProcessor().render_reference, spec)
    return resolve_spec(spec, variables, task_name="api", sources={}, render=render)


# -- 1. references in the url cannot change the origin ----------------------------------------


def test_cli_a_variable_beside_the_host_cannot_send_credentials_elsewhere(
    api, stranger, tmp_path
) -> None:
    api.route("/items", Reply(200, b"{}"))
    stranger.route("/items", Reply(200, b"{}"))
    spec = {
        "url": api.url + "${VAR:path}",
        "headers": {"Authorization": "Bearer ${VAR:token}"},
        "retries": 0,
        "create": {"method": "GET"},
    }
    stranger_authority = stranger.url.removeprefix("http://")
    done = run_cli(
        tmp_path,
        spec,
        "apply",
        "-f",
        "t.yaml",
        "--state",
        "memory://",
        "--var",
        f"path=@{stranger_authority}/items",
        "--var",
        "token=SECRET-123456",
    )
    assert done.returncode != 0
    assert stranger.seen == [] and api.seen == []
    assert "api: failed" in done.stderr and "spec.url" in done.stderr, done.stderr
    assert "SECRET-123456" not in done.stderr + done.stdout


@pytest.mark.parametrize(
    "url, value",
    [
        ("http://127.0.0.1:8101${VAR:v}/x", "@127.0.0.1:8102"),  # port: digits only
        ("http://127.0.0.1:8101${VAR:v}", "/../x"),
        ("http://${VAR:v}/x", "127.0.0.1:8102@evil.example"),  # host: host characters only
        ("http://${VAR:v}/x", "evil.example\\@api"),
        ("http://${VAR:v}/x", "evil.example#"),
        ("http://${VAR:v}/x", "evil%2eexample"),
        ("http://api${VAR:v}.example/x", "?.evil.example/"),
        ("${VAR:v}://api.example/x", "http"),  # a reference at the start must hold the origin
        ("ht${VAR:v}://api.example/x", "tp"),  # scheme
        ("${VAR:base}${VAR:v}", "@evil.example/x"),  # after a leading reference: still checked
        ("${VAR:base}:${VAR:v}/x", "80@evil.example"),
    ],
)
def test_a_value_that_could_change_the_origin_is_refused(url, value) -> None:
    spec = {"url": url, "create": {}}
    with pytest.raises(OpusError, match=r"spec\.url"):
        resolve(spec, v=value, base="http://api.example")


def test_a_value_in_a_request_url_is_checked_too() -> None:
    spec = {"url": "http://api.example", "create": {"url": "http://api.example${VAR:v}"}}
    with pytest.raises(OpusError, match=r"spec\.create\.url"):
        resolve(spec, v="@evil.example")


@pytest.mark.parametrize(
    "url, value, expected",
    [
        ("http://${VAR:v}/x", "api.example", "http://api.example/x"),
        ("http://${VAR:v}/x", "api.example:8080", "http://api.example:8080/x"),
        ("http://api.example:${VAR:v}/x", 8080, "http://api.example:8080/x"),
        ("http://api-${VAR:v}.example/x", "eu-1", "http://api-eu-1.example/x"),
        ("http://api.example/x/${VAR:v}", "a/b c", "http://api.example/x/a/b%20c"),
        ("http://api.example/${VAR:v}", "@evil.example/%2e?#\\", None),
        (
            "http://api.example/x?q=${VAR:v}",
            "a&admin=1#f/",
            "http://api.example/x?q=a%26admin%3D1%23f%2F",
        ),
        ("http://api.example/x#${VAR:v}", "a#b?c", "http://api.example/x#a%23b%3Fc"),
        ("${VAR:v}", "http://api.example/x", "http://api.example/x"),
        ("${VAR:v}/items/${VAR:id}", "http://api.example/base", None),
    ],
)
def test_values_stay_data_within_their_part(url, value, expected) -> None:
    from opus_http.client import origin

    resolved = resolve({"url": url, "create": {}}, v=value, id="7?x")["url"]
    if expected is not None:
        assert resolved == expected
    assert origin(resolved)[1] in ("api.example", "api-eu-1.example"), resolved
    if "${VAR:id}" in url:
        assert resolved == "http://api.example/base/items/7%3Fx"


def test_a_leading_reference_and_encoded_path_reach_the_right_server(api, stranger) -> None:
    api.route("/items/a%40127.0.0.1/%3F%23", Reply(200, b'{"ok": true}'))
    spec = {
        "url": "${VAR:base}/items/${VAR:id}",
        "headers": {"Authorization": "Bearer ${VAR:token}"},
        "retries": 0,
        "create": {"method": "GET"},
    }
    resolved = resolve(spec, base=api.url, id="a@127.0.0.1/?#", token="t-123456")
    assert call(resolved).outputs["json"] == {"ok": True}
    assert stranger.seen == []


def test_a_url_password_from_a_variable_stays_in_the_userinfo(api, stranger) -> None:
    api.route("/x", Reply(200, b"{}"))
    authority = api.url.removeprefix("http://")
    spec = {"url": f"http://user:${{VAR:pw}}@{authority}/x", "retries": 0, "create": {}}
    password = "p@ss:w/rd#" + stranger.url.removeprefix("http://")
    call(resolve(spec, pw=password))
    sent = {k.lower(): v for k, v in api.hits("/x")[0].headers.items()}
    assert base64.b64decode(sent["authorization"].split()[1]).decode() == f"user:{password}"
    assert stranger.seen == []


@pytest.mark.parametrize("value", ["a\r\nX-Injected: 1", "a\nX-Injected: 1", "a\r\n\tX: 1", "a\0"])
def test_a_header_value_cannot_hold_line_breaks(api, value) -> None:
    url = api.route("/x", Reply(200, b"{}"))
    spec = {"url": url, "headers": {"X-Trace": "t-${VAR:v}"}, "retries": 0, "create": {}}
    with pytest.raises(OpusError, match=r"spec\.headers\.X-Trace.*CR, LF"):
        resolve(spec, v=value)
    whole = {**spec, "headers": {"X-Trace": value}}  # a whole-string reference, or a literal
    with pytest.raises(OpusError, match="CR, LF"):
        call(whole)
    assert api.seen == []


# -- 2. masking covers JSON-escaped forms ------------------------------------------------------


def test_json_escaped_secrets_are_masked_in_outputs(api) -> None:
    body = (
        b'{"auth": "Bearer abc\\/def+ghi\\/jkl==", "bare": "abc\\/def+ghi\\/jkl==",'
        b' "u": "\\u0061bc/def+ghi/jkl\\u003d\\u003d", "list": ["Bearer abc/def+ghi/jkl=="]}'
    )
    url = api.route("/me", Reply(200, body, {"Content-Type": "application/json"}))
    spec = {"url": url, "headers": {"Authorization": f"Bearer {TOKEN}"}, "retries": 0, "create": {}}
    outputs = call(spec).outputs
    dumped = json.dumps(outputs)
    for form in (TOKEN, TOKEN.replace("/", "\\/"), "abc\\\\/def", "\\u0061bc"):
        assert form not in dumped, form
    assert "abc" not in json.dumps(outputs["json"])
    assert outputs["json"]["auth"] == "***" or "***" in outputs["json"]["auth"]


def test_secrets_the_core_names_are_masked_like_its_own(api) -> None:
    """ctx.secrets (another task's sensitive output this spec holds): masked in the body
    and the parsed JSON of the outputs, in their escaped forms too."""
    secret = "vault/tok+en=="
    body = (
        b'{"echo": "vault/tok+en==", "escaped": "vault\\/tok+en==", "q": "vault%2Ftok%2Ben%3D%3D"}'
    )
    url = api.route("/me", Reply(200, body, {"Content-Type": "application/json"}))
    outputs = call({"url": url, "retries": 0, "create": {}}, secrets=(secret,)).outputs
    dumped = json.dumps(outputs)
    for form in (secret, "vault%2Ftok", "vault\\\\/tok"):
        assert form not in dumped, form
    assert outputs["json"] == {"echo": "***", "escaped": "***", "q": "***"}


def test_a_known_secret_written_into_a_url_path_is_masked_there() -> None:
    # a reference in a url's path is percent-encoded keeping its "/": that form is masked
    from opus_http.spec import HttpSpec

    spec = HttpSpec.parse(
        "api", {"url": "http://127.0.0.1:9/x/s3cret-ab/c%20d", "create": {}}, ("s3cret-ab/c d",)
    )
    assert spec.mask("GET http://127.0.0.1:9/x/s3cret-ab/c%20d failed") == (
        "GET http://127.0.0.1:9/x/*** failed"
    )


def test_cli_output_json_does_not_show_an_escaped_secret(api, tmp_path) -> None:
    body = b'{"auth": "Bearer abc\\/def+ghi\\/jkl=="}'
    url = api.route("/me", Reply(200, body, {"Content-Type": "application/json"}))
    spec = {
        "url": url,
        "headers": {"Authorization": "Bearer ${VAR:token}"},
        "retries": 0,
        "create": {"method": "GET"},
    }
    db = f"sqlite:///{tmp_path / 'state.db'}"
    done = run_cli(
        tmp_path, spec, "apply", "-f", "t.yaml", "--state", db, "--var", f"token={TOKEN}"
    )
    assert done.returncode == 0, done.stderr
    shown = run_cli(tmp_path, spec, "output", "api", "--state", db, "-o", "json")
    assert shown.returncode == 0, shown.stderr
    assert "jkl==" not in shown.stdout and "abc" not in shown.stdout, shown.stdout
    assert json.loads(shown.stdout)  # the masked outputs are still there


# -- 3. timeout bounds a whole attempt --------------------------------------------------------


class Trickle:
    """A raw server on 127.0.0.1 that announces 100 bytes and sends one per ``pace`` s
    (``slow_head``: dribbles the status line and headers instead)."""

    def __init__(self, pace: float = 0.2, slow_head: bool = False) -> None:
        self.pace, self.slow_head = pace, slow_head
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/slow"
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
        try:
            conn.recv(65536)
            if self.slow_head:
                for i in range(len(head)):
                    if self.stop.wait(self.pace):
                        break
                    conn.sendall(head[i : i + 1])
            else:
                conn.sendall(head)
            for _ in range(100):
                if self.stop.wait(self.pace):
                    break
                conn.sendall(b"x")
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@pytest.fixture
def trickle() -> Iterator[Trickle]:
    server = Trickle()
    yield server
    server.close()


@pytest.mark.parametrize("slow_head", [False, True])
def test_timeout_bounds_the_whole_attempt(slow_head) -> None:
    server = Trickle(slow_head=slow_head)
    try:
        spec = {"url": server.url, "retries": 0, "timeout": 1, "create": {}}
        began = time.monotonic()
        with pytest.raises(HttpTaskError, match="timed out"):
            call(spec)
        assert time.monotonic() - began < 4
    finally:
        server.close()


def test_timeout_bounds_a_download_too(trickle, tmp_path) -> None:
    spec = {"url": trickle.url, "path": str(tmp_path / "f"), "retries": 0, "timeout": 1}
    began = time.monotonic()
    with pytest.raises(HttpTaskError, match="timed out"):
        call(spec)
    assert time.monotonic() - began < 4
    assert not (tmp_path / "f").exists()


def test_a_cancelled_action_stops_its_request(trickle) -> None:
    spec = {"url": trickle.url, "retries": 3, "timeout": 60, "create": {}}

    def cancel_soon(ctx) -> None:
        threading.Timer(0.5, ctx.cancelled.cancel, args=("test",)).start()

    began = time.monotonic()
    with pytest.raises(HttpTaskError, match="cancelled"):
        call(spec, ctx_hook=cancel_soon)
    assert time.monotonic() - began < 4
