"""The ``http/v1`` spec: download mode (``path`` given) or endpoint mode (requests per action)."""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from opus import OpusError
from opus.masking import Masker

from .client import Request

REQUEST_KEYS = ("create", "update", "delete", "check", "describe", "rollback")
COMMON_KEYS = (
    "url",
    "headers",
    "retries",
    "backoff",
    "timeout",
    "sensitiveHeaders",
    "maxBodyBytes",
)
#: Default ``maxBodyBytes`` of an endpoint response (kept in memory); downloads: no limit.
DEFAULT_MAX_BODY = 16 * 1024 * 1024
DOWNLOAD_KEYS = ("path", "sha256", "mode")
ALWAYS_SENSITIVE = ("authorization", "proxy-authorization", "cookie", "x-api-key")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class HttpSpecError(OpusError):
    """An ``http/v1`` spec is invalid; the message names the task and the field."""

    def __init__(self, task: str, field: str, message: str) -> None:
        self.task, self.field = task, field
        super().__init__(f"task {task!r}, field 'spec.{field}': {message}")


@dataclass(frozen=True)
class HttpSpec:
    """A validated ``http/v1`` spec."""

    url: str | None
    headers: Mapping[str, str]
    retries: int
    backoff: float
    timeout: float
    path: Path | None = None
    sha256: str | None = None
    mode: int | None = None
    requests: Mapping[str, Request] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    sensitive_headers: frozenset[str] = frozenset()
    max_body: int | None = None

    @property
    def download(self) -> bool:
        return self.path is not None

    @classmethod
    def parse(cls, task: str, spec: Mapping[str, Any]) -> HttpSpec:
        download = "path" in spec
        allowed = set(COMMON_KEYS) | (set(DOWNLOAD_KEYS) if download else set(REQUEST_KEYS))
        unknown = sorted(set(spec) - allowed)
        if unknown:
            hint = "download mode (spec.path is set)" if download else "endpoint mode"
            raise HttpSpecError(
                task, unknown[0], f"unknown key in {hint} (known: {', '.join(sorted(allowed))})"
            )
        url = spec.get("url")
        if url is not None:
            _check_url(task, "url", url)
        headers = _headers(task, "headers", spec.get("headers"))
        sensitive = sensitive_header_names(spec)
        max_body = spec.get("maxBodyBytes", None if download else DEFAULT_MAX_BODY)
        if max_body is not None:
            max_body = _number(task, "maxBodyBytes", max_body, integer=True, positive=True)
        common = dict(
            url=url,
            headers=headers,
            retries=_number(task, "retries", spec.get("retries", 3), integer=True),
            backoff=_number(task, "backoff", spec.get("backoff", 0.5)),
            timeout=_number(task, "timeout", spec.get("timeout", 30), positive=True),
            secrets=tuple(sensitive_values(spec)),
            sensitive_headers=sensitive,
            max_body=max_body,
        )
        if download:
            return cls(**common, **_download(task, spec))  # type: ignore[arg-type]
        requests = {
            k: _request(task, k, spec[k], url, headers, sensitive)
            for k in REQUEST_KEYS
            if k in spec
        }
        if not requests:
            raise HttpSpecError(task, "create", "give 'path' (download) or a request per action")
        return cls(**common, requests=requests)  # type: ignore[arg-type]

    def mask(self, text: str) -> str:
        """``text`` with every secret of this spec masked (see :mod:`opus.masking`)."""
        return Masker(self.secrets).text(text)


def _download(task: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    if not spec.get("url"):
        raise HttpSpecError(task, "url", "required to download to 'path'")
    path = spec["path"]
    if not isinstance(path, str) or not path:
        raise HttpSpecError(task, "path", "must be a file path")
    digest = spec.get("sha256")
    if digest is not None and (not isinstance(digest, str) or not _SHA256.match(digest.lower())):
        raise HttpSpecError(task, "sha256", "must be 64 hex digits")
    mode = spec.get("mode")
    if mode is not None:
        text = mode if isinstance(mode, str) else f"{mode:o}" if isinstance(mode, int) else "x"
        if not re.fullmatch(r"(0o)?[0-7]{1,4}", text):
            raise HttpSpecError(task, "mode", f"must be an octal string like '0644', not {mode!r}")
        mode = int(text.removeprefix("0o"), 8) if isinstance(mode, str) else mode
    return {
        "path": Path(path).expanduser().absolute(),
        "sha256": digest.lower() if digest else None,
        "mode": mode,
    }


def _request(
    task: str,
    key: str,
    value: Any,
    url: str | None,
    headers: Mapping[str, str],
    sensitive: frozenset[str],
) -> Request:
    if not isinstance(value, Mapping):
        raise HttpSpecError(
            task, key, "must be a request: {method, url, json|body, headers, expect_status}"
        )
    unknown = sorted(set(value) - {"method", "url", "json", "body", "headers", "expect_status"})
    if unknown:
        raise HttpSpecError(task, f"{key}.{unknown[0]}", "unknown request key")
    target = value.get("url", url)
    if not target:
        raise HttpSpecError(task, f"{key}.url", "no url here and no spec.url")
    _check_url(task, f"{key}.url", target)
    merged = {**headers, **_headers(task, f"{key}.headers", value.get("headers"))}
    if "json" in value and "body" in value:
        raise HttpSpecError(task, key, "give 'json' or 'body', not both")
    data = None
    if "json" in value:
        data = json.dumps(value["json"]).encode()
        merged.setdefault("Content-Type", "application/json")
    elif "body" in value:
        body = value["body"]
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    method = str(value.get("method") or ("POST" if data is not None else "GET")).upper()
    target, merged = split_userinfo(target, merged)
    return Request(
        method,
        target,
        merged,
        data,
        _statuses(task, f"{key}.expect_status", value.get("expect_status")),
        sensitive,
    )


def _statuses(task: str, field_: str, value: Any) -> tuple[int, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(v, int) and not isinstance(v, bool) and 100 <= v <= 599 for v in items):
        raise HttpSpecError(task, field_, "must be an HTTP status or a list of them")
    return tuple(items)


def _headers(task: str, field_: str, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise HttpSpecError(task, field_, "must map header names to values")
    return {str(k): str(v) for k, v in value.items()}


def _number(
    task: str, field_: str, value: Any, *, integer: bool = False, positive: bool = False
) -> Any:
    ok = isinstance(value, int if integer else (int, float)) and not isinstance(value, bool)
    if not ok or value < 0 or (positive and value == 0):
        kind = "a whole number" if integer else "a number of seconds"
        raise HttpSpecError(
            task, field_, f"must be {kind} >= {'1' if positive else '0'}, not {value!r}"
        )
    return value


def _check_url(task: str, field_: str, url: Any) -> None:
    if (
        not isinstance(url, str)
        or urlsplit(url).scheme not in ("http", "https")
        or not urlsplit(url).netloc
    ):
        raise HttpSpecError(task, field_, f"must be an http:// or https:// URL, not {url!r}")


# -- sensitive values ----------------------------------------------------------------------


def sensitive_header_names(spec: Mapping[str, Any]) -> frozenset[str]:
    """Lower-case names of the headers holding credentials: the usual ones and
    ``sensitiveHeaders``."""
    names = spec.get("sensitiveHeaders") or []
    names = {n.lower() for n in names if isinstance(n, str)} if isinstance(names, list) else set()
    return frozenset(names | set(ALWAYS_SENSITIVE))


def sensitive_values(spec: Mapping[str, Any]) -> list[str]:
    """Secrets in ``spec``: sensitive header values and passwords in URLs."""
    names = sensitive_header_names(spec)
    found: list[str] = []
    for headers in _all_headers(spec):
        found += [str(v) for k, v in headers.items() if str(k).lower() in names and str(v)]
    for url in _all_urls(spec):
        password = urlsplit(url).password
        if password:
            found.append(password)
    return sorted(set(found), key=len, reverse=True)


def redact_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``spec`` with sensitive header values and URL passwords replaced by ``***``."""
    masked: dict[str, Any] = Masker(sensitive_values(spec)).data(copy.deepcopy(dict(spec)))
    return masked


def _all_headers(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found = [spec.get("headers")]
    found += [spec[k].get("headers") for k in REQUEST_KEYS if isinstance(spec.get(k), Mapping)]
    return [h for h in found if isinstance(h, Mapping)]


def _all_urls(spec: Mapping[str, Any]) -> list[str]:
    found = [spec.get("url")]
    found += [spec[k].get("url") for k in REQUEST_KEYS if isinstance(spec.get(k), Mapping)]
    return [u for u in found if isinstance(u, str)]


def split_userinfo(url: str, headers: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """Move ``user:password@`` from ``url`` into a Basic ``Authorization`` header."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, dict(headers)
    userinfo, host = parts.netloc.rsplit("@", 1)
    token = base64.b64encode(unquote(userinfo).encode()).decode()
    merged = {"Authorization": f"Basic {token}", **headers}
    return urlunsplit(parts._replace(netloc=host)), merged
