"""http/v1 hardening (issue 12, item 2): credentials stay on their origin, bodies are
bounded, only transient failures are retried, error pages are quoted short.

Two local servers on 127.0.0.1 (two ports: two origins) play the API and a stranger.
"""

from __future__ import annotations

import json

import pytest
from http_calls import call, run_cli
from http_local_server import Reply
from opus_http import HttpTaskError

FAST = {"backoff": 0.01, "timeout": 5}
SECRETS = {
    "Authorization": "Bearer tok-123456",
    "X-Api-Key": "key-abcdef",
    "Cookie": "session=cookie-987654",
    "Proxy-Authorization": "Basic cHJveHk6cHc=",
    "X-Token": "custom-555555",
}
PLAIN = {"Accept": "application/json", "X-Trace": "t-1"}


def endpoint(url: str, **extra) -> dict:
    return {
        "url": url,
        "headers": {**SECRETS, **PLAIN},
        "sensitiveHeaders": ["X-Token"],
        "create": {},
        **FAST,
        **extra,
    }


def lower(headers: dict) -> dict:
    return {k.lower(): v for k, v in headers.items()}


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_cross_origin_redirect_drops_every_credential(api, stranger, status) -> None:
    target = stranger.route("/landing", Reply(200, b'{"ok": true}'))
    start = api.route("/start", Reply(status, b"", {"Location": target}))
    result = call(endpoint(start))
    assert result.outputs["json"] == {"ok": True}
    assert lower(api.hits("/start")[0].headers)["authorization"] == SECRETS["Authorization"]
    seen = lower(stranger.hits("/landing")[0].headers)
    for name in SECRETS:
        assert name.lower() not in seen, f"{name} leaked to another origin"
    assert seen["accept"] == PLAIN["Accept"] and seen["x-trace"] == PLAIN["X-Trace"]


def test_credentials_do_not_come_back_after_leaving_the_origin(api, stranger) -> None:
    back = api.route("/back", Reply(200, b"{}"))
    away = stranger.route("/away", Reply(302, b"", {"Location": back}))
    start = api.route("/start", Reply(302, b"", {"Location": away}))
    call(endpoint(start))
    assert "authorization" not in lower(api.hits("/back")[0].headers)


def test_a_same_origin_redirect_keeps_credentials(api) -> None:
    target = api.route("/new", Reply(200, b"{}"))
    start = api.route("/old", Reply(301, b"", {"Location": target}))
    call(endpoint(start))
    seen = lower(api.hits("/new")[0].headers)
    assert seen["authorization"] == SECRETS["Authorization"]
    assert seen["x-token"] == SECRETS["X-Token"]


def test_url_password_basic_auth_is_dropped_on_a_cross_origin_download(
    api, stranger, tmp_path
) -> None:
    target = stranger.route("/file", Reply(200, b"data"))
    start = api.route("/file", Reply(302, b"", {"Location": target}))
    with_password = start.replace("http://", "http://user:pw-secret@")
    call({"url": with_password, "path": str(tmp_path / "f"), **FAST})
    assert lower(api.hits("/file")[0].headers)["authorization"].startswith("Basic ")
    assert "authorization" not in lower(stranger.hits("/file")[0].headers)
    assert (tmp_path / "f").read_bytes() == b"data"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 501, 505])
def test_non_transient_statuses_are_not_retried(api, status) -> None:
    url = api.route("/x", Reply(status, b"no"))
    with pytest.raises(HttpTaskError, match=f"HTTP {status}") as info:
        call(endpoint(url, retries=3))
    assert info.value.status == status
    assert len(api.hits("/x")) == 1


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504])
def test_transient_statuses_are_retried(api, status) -> None:
    url = api.route("/x", Reply(status, b"busy"), Reply(200, b"{}"))
    result = call(endpoint(url, retries=2))
    assert result.outputs["status"] == 200 and len(api.hits("/x")) == 2


def test_a_body_over_the_limit_fails_clearly_without_retry(api) -> None:
    url = api.route("/big", Reply(200, b"x" * 5000))
    with pytest.raises(HttpTaskError, match=r"larger than the limit of 1000 bytes.*maxBodyBytes"):
        call(endpoint(url, maxBodyBytes=1000, retries=3))
    assert len(api.hits("/big")) == 1


def test_a_download_over_the_limit_leaves_no_file(api, tmp_path) -> None:
    url = api.route("/big", Reply(200, b"x" * 5000))
    target = tmp_path / "big"
    with pytest.raises(HttpTaskError, match="larger than the limit"):
        call({"url": url, "path": str(target), "maxBodyBytes": 100, **FAST})
    assert list(tmp_path.iterdir()) == []


def test_endpoint_bodies_are_bounded_by_default(api) -> None:
    from opus_http.spec import DEFAULT_MAX_BODY, HttpSpec

    spec = HttpSpec.parse("t", endpoint(api.url))
    assert spec.max_body == DEFAULT_MAX_BODY
    url = api.route("/ok", Reply(200, b"{}"))
    assert call(endpoint(url)).outputs["status"] == 200


def test_an_html_error_page_is_quoted_short(api) -> None:
    page = (
        b"<!doctype html><html><head><style>body{color:red}</style>"
        b"<title>404 &amp; Not Found</title></head><body>" + b"<div>" * 2000 + b"</body></html>"
    )
    url = api.route("/gone", Reply(404, page, {"Content-Type": "text/html"}))
    with pytest.raises(HttpTaskError) as info:
        call(endpoint(url))
    message = str(info.value)
    assert message.endswith("HTTP 404 Not Found: 404 & Not Found"), message
    assert "<" not in message and len(message) < 300


def test_a_long_text_error_body_is_cut(api) -> None:
    url = api.route("/bad", Reply(400, b"word " * 10_000))
    with pytest.raises(HttpTaskError) as info:
        call(endpoint(url))
    assert len(str(info.value)) < 400 and str(info.value).endswith("...")


def test_cli_apply_does_not_leak_credentials_across_origins(api, stranger, tmp_path) -> None:
    target = stranger.route("/landing", Reply(200, b"{}"))
    start = api.route("/start", Reply(302, b"", {"Location": target}))
    spec = {
        "url": start,
        "headers": {"Authorization": "Bearer ${VAR:token}", "X-Api-Key": "${VAR:token}"},
        "create": {"method": "GET"},
        **FAST,
    }
    done = run_cli(
        tmp_path, spec, "apply", "-f", "t.yaml", "--state", "memory://",
        "--var", "token=s3cr3t-token", "-o", "json", name="deploy",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tasks"]["deploy"]["status"] == "done"
    seen = lower(stranger.hits("/landing")[0].headers)
    assert "authorization" not in seen and "x-api-key" not in seen
    assert "s3cr3t-token" not in json.dumps(stranger.hits("/landing")[0].headers)


def test_origins_compare_scheme_host_and_port() -> None:
    from opus_http.client import origin

    assert origin("http://API.example/x") == origin("http://api.example:80/y")
    assert origin("https://api.example/x") == origin("https://api.example:443/")
    assert origin("https://api.example/x") != origin("http://api.example/x")  # downgrade
    assert origin("http://api.example/x") != origin("http://api.example:8080/x")
    assert origin("http://api.example/x") != origin("http://evil.example/x")
