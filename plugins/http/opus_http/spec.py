"""The ``http/v1`` spec: download mode (``path`` given) or endpoint mode (requests per action)."""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, unquote, urlsplit, urlunsplit

from opus import SpecError, validate_spec
from opus.masking import Masker

from .client import Request
from .references import UnsafeReference, check_header_value

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


_URL: dict[str, Any] = {
    "type": "string",
    "pattern": r"^[Hh][Tt][Tt][Pp][Ss]?://[^/?#\s]+",
    "x-opus-message": "must be an http:// or https:// URL",
}
_HEADERS: dict[str, Any] = {
    "type": "object",
    "additionalProperties": {"type": ["string", "number", "boolean"]},
}
_STATUS: dict[str, Any] = {"type": "integer", "minimum": 100, "maximum": 599}
_REQUEST: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "method": {"type": "string", "minLength": 1},
        "url": {"$ref": "#/$defs/url"},
        "json": {"description": "A JSON body (sets Content-Type)."},
        "body": {"description": "A text body (other values are sent as JSON)."},
        "headers": {"$ref": "#/$defs/headers"},
        "expect_status": {
            "type": ["integer", "array"],
            "minimum": 100,
            "maximum": 599,
            "items": _STATUS,
            "x-opus-message": "must be an HTTP status or a list of them",
        },
    },
    "dependentSchemas": {
        "json": {
            "properties": {"body": {"not": {}, "x-opus-message": "give 'json' or 'body', not both"}}
        }
    },
}
_ENDPOINT_ONLY = {"not": {}, "x-opus-message": "not in download mode (spec.path is set)"}

#: The ``http/v1`` spec (JSON Schema 2020-12), checked by opus before anything runs:
#: download mode (``path`` given) or endpoint mode (a request per action).
SPEC_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "http/v1 spec",
    "$defs": {"url": _URL, "headers": _HEADERS, "request": _REQUEST},
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "url": {"$ref": "#/$defs/url"},
        "headers": {"$ref": "#/$defs/headers"},
        "retries": {"type": "integer", "minimum": 0},
        "backoff": {"type": "number", "minimum": 0},
        "timeout": {"type": "number", "exclusiveMinimum": 0},
        "sensitiveHeaders": {"type": "array", "items": {"type": "string"}},
        "maxBodyBytes": {
            "type": "integer",
            "minimum": 1,
            "description": "Refuse a response body larger than this (endpoint default 16 MiB).",
        },
        "path": {"type": "string", "minLength": 1, "description": "Download to this file."},
        "sha256": {
            "type": "string",
            "pattern": "^[0-9a-fA-F]{64}$",
            "x-opus-message": "must be 64 hex digits",
        },
        "mode": {
            "type": ["integer", "string"],
            "minimum": 0,
            "maximum": 0o7777,
            "pattern": "^(0o)?[0-7]{1,4}$",
            "x-opus-message": "must be an octal string like '0644'",
        },
        **{key: {"$ref": "#/$defs/request"} for key in REQUEST_KEYS},
    },
    # Modes through dependentSchemas and alternatives ordered by the common case, so that
    # the fast check of a valid spec never has to try and discard a branch.
    "dependentSchemas": {
        "path": {
            "required": ["url"],
            "properties": {key: _ENDPOINT_ONLY for key in REQUEST_KEYS},
        },
        "sha256": {
            "required": ["path"],
            "x-opus-message": "only in download mode (with spec.path)",
        },
        "mode": {"required": ["path"], "x-opus-message": "only in download mode (with spec.path)"},
    },
    "allOf": [
        {
            "anyOf": [{"required": [key]} for key in (*REQUEST_KEYS, "path")],
            "x-opus-message": "give 'path' (download) or a request per action (create, ...)",
        },
        {
            "anyOf": [
                {"required": ["url"]},
                {
                    "properties": {
                        key: {
                            "required": ["url"],
                            "x-opus-message": "needs a url (here or in spec.url)",
                        }
                        for key in REQUEST_KEYS
                    }
                },
            ]
        },
    ],
}


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
    def parse(cls, task: str, spec: Mapping[str, Any], known: Iterable[str] = ()) -> HttpSpec:
        """The typed view of a resolved spec (checked against :data:`SPEC_SCHEMA` again,
        since a reference may have resolved to a value of the wrong type). ``known`` are
        more secrets to mask (``ctx.secrets``: other tasks' sensitive outputs it holds)."""
        validate_spec(SPEC_SCHEMA, spec, task=task)
        _check_headers(task, spec)
        url = spec.get("url")
        headers = _headers(spec.get("headers"))
        sensitive = sensitive_header_names(spec)
        common: dict[str, Any] = dict(
            url=url,
            headers=headers,
            retries=spec.get("retries", 3),
            backoff=spec.get("backoff", 0.5),
            timeout=spec.get("timeout", 30),
            secrets=tuple(sensitive_values(spec, known)),
            sensitive_headers=sensitive,
            max_body=spec.get("maxBodyBytes", None if "path" in spec else DEFAULT_MAX_BODY),
        )
        if "path" in spec:
            return cls(**common, **_download(spec))
        requests = {
            k: _request(spec[k], url, headers, sensitive) for k in REQUEST_KEYS if k in spec
        }
        return cls(**common, requests=requests)

    def mask(self, text: str) -> str:
        """``text`` with every secret of this spec masked (see :mod:`opus.masking`), also
        where it stands JSON-escaped in a string literal (``\\/``, ``\\u0061``, ...)."""
        masker = Masker(self.secrets)
        if not masker:
            return text
        return masker.text(_mask_json_strings(masker, text))

    def mask_data(self, value: Any) -> Any:
        """A copy of parsed JSON ``value`` with every secret masked in keys and values."""
        masker = Masker(self.secrets)
        if not masker:
            return value
        return _mask_data(masker, value)


#: A JSON string literal (those without a backslash are left to plain masking).
_JSON_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')


def _mask_json_strings(masker: Masker, text: str) -> str:
    """``text`` with every escaped JSON string literal whose decoded value holds a secret
    written again, masked (so ``"abc\\/def"`` is caught when ``abc/def`` is secret)."""

    def literal(match: re.Match[str]) -> str:
        if "\\" not in match.group():
            return match.group()
        try:
            decoded = json.loads(match.group())
        except ValueError:
            return match.group()
        masked = masker.text(decoded)
        return match.group() if masked == decoded else json.dumps(masked)

    return _JSON_STRING.sub(literal, text) if "\\" in text else text


def _mask_data(masker: Masker, value: Any) -> Any:
    if isinstance(value, str):
        return masker.text(value)
    if isinstance(value, Mapping):
        return {masker.text(str(k)): _mask_data(masker, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_data(masker, v) for v in value]
    return value


def _check_headers(task: str, spec: Mapping[str, Any]) -> None:
    """Refuse CR, LF or NUL in a header name or value (whatever its source)."""
    places = [("spec.headers", spec.get("headers"))]
    places += [(f"spec.{k}.headers", spec[k].get("headers")) for k in REQUEST_KEYS if k in spec]
    for where, headers in places:
        for name, value in (headers or {}).items():
            try:
                check_header_value(name)
                check_header_value(value)
            except UnsafeReference as exc:
                raise SpecError(str(exc), task=task, path=f"{where}.{name}") from None


def _download(spec: Mapping[str, Any]) -> dict[str, Any]:
    digest = spec.get("sha256")
    mode = spec.get("mode")
    if isinstance(mode, str):
        mode = int(mode.removeprefix("0o"), 8)
    return {
        "path": Path(spec["path"]).expanduser().absolute(),
        "sha256": digest.lower() if digest else None,
        "mode": mode,
    }


def _request(
    value: Mapping[str, Any],
    url: str | None,
    headers: Mapping[str, str],
    sensitive: frozenset[str] = frozenset(),
) -> Request:
    target = value.get("url", url)
    assert target, "the schema requires a url"
    merged = {**headers, **_headers(value.get("headers"))}
    data = None
    if "json" in value:
        data = json.dumps(value["json"]).encode()
        merged.setdefault("Content-Type", "application/json")
    elif "body" in value:
        body = value["body"]
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    method = str(value.get("method") or ("POST" if data is not None else "GET")).upper()
    target, merged = split_userinfo(target, merged)
    statuses = value.get("expect_status")
    expected = (
        () if statuses is None else tuple(statuses if isinstance(statuses, list) else [statuses])
    )
    return Request(method, target, merged, data, expected, sensitive)


def _headers(value: Mapping[str, Any] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in (value or {}).items()}


# -- sensitive values ----------------------------------------------------------------------


def sensitive_header_names(spec: Mapping[str, Any]) -> frozenset[str]:
    """Lower-case names of the headers holding credentials: the usual ones and
    ``sensitiveHeaders``."""
    names = spec.get("sensitiveHeaders") or []
    names = {n.lower() for n in names if isinstance(n, str)} if isinstance(names, list) else set()
    return frozenset(names | set(ALWAYS_SENSITIVE))


def sensitive_values(spec: Mapping[str, Any], known: Iterable[str] = ()) -> list[str]:
    """Secrets in ``spec``: sensitive header values, passwords in URLs, and ``known``."""
    names = sensitive_header_names(spec)
    found: list[str] = [value for value in known if value]
    for headers in _all_headers(spec):
        found += [str(v) for k, v in headers.items() if str(k).lower() in names and str(v)]
    for url in _all_urls(spec):
        password = urlsplit(url).password
        if password:
            found += [password, unquote(password)]
    found += [credential for value in found if (credential := _credential(value))]
    found += [form for value in found for form in _escaped_forms(value)]
    return sorted(set(found), key=len, reverse=True)


#: ``Scheme credential`` (``Bearer abc``, ``Basic dXNlcg==``): the credential alone is secret.
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]* +(\S{6,})")


def _credential(value: str) -> str | None:
    match = _SCHEME.fullmatch(value.strip())
    return match.group(1) if match else None


def _escaped_forms(value: str) -> list[str]:
    """Other ways a body or URL may write ``value``: JSON-escaped (with and without ``\\/``),
    percent-encoded (as a query value, and as a path that keeps its ``/``)."""
    escaped = json.dumps(value)[1:-1]
    return [
        escaped,
        escaped.replace("/", "\\/"),
        quote(value, safe=""),
        quote(value, safe="/"),  # as a reference is written into a url's path
        quote_plus(value),
    ]


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
