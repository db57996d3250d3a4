"""The fake Slack's HTTP side: reading a request (query strings, form or JSON bodies, as the
slack_sdk clients send them) into a method name and its parameters, and writing the answer."""

from __future__ import annotations

import contextlib
import json
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from securitybot.demo._serving import write_reply
from securitybot.demo.fake_slack_methods import Json

# Audit Logs calls are not Web API "methods"; they are recorded under this name.
AUDIT_LOGS = "audit.logs"
# Calls to a block-action response_url (see FakeSlack.response_url) are recorded under this name.
RESPONSE_URL = "response_url"


def decode_json_fields(params: dict[str, Any]) -> dict[str, Any]:
    # Form-encoded clients send blocks/view as JSON strings; Slack decodes them server-side.
    for key in ("blocks", "attachments", "view", "metadata"):
        value = params.get(key)
        if isinstance(value, str) and value[:1] in "[{":
            with contextlib.suppress(ValueError):
                params[key] = json.loads(value)
    return params


def read_request(req: BaseHTTPRequestHandler) -> tuple[str | None, dict[str, Any], dict[str, str]]:
    """The method called (Web API method, ``AUDIT_LOGS`` or ``RESPONSE_URL``; None for a path
    the fake does not serve), its parameters and the request's headers."""
    split = urlsplit(req.path)
    length = int(req.headers.get("Content-Length") or 0)
    raw = req.rfile.read(length).decode("utf-8") if length else ""
    headers = {k: v for k, v in req.headers.items()}
    params: dict[str, Any] = dict(parse_qsl(split.query, keep_blank_values=True))
    ctype = req.headers.get("Content-Type", "")
    if raw and "json" in ctype:
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if isinstance(body, dict):
            params.update(body)
    elif raw:
        params.update(parse_qsl(raw, keep_blank_values=True))
    decode_json_fields(params)

    method: str | None
    if split.path.startswith("/api/"):
        method = split.path[len("/api/") :]
    elif split.path == "/audit/v1/logs":
        method = AUDIT_LOGS
    elif split.path.startswith("/actions/"):
        method = RESPONSE_URL
    else:
        method = None
    return method, params, headers


def send_reply(
    req: BaseHTTPRequestHandler, status: int, payload: Json, extra: dict[str, str]
) -> None:
    if status >= 500 and not payload:
        data, ctype = b"<html><body>Internal Server Error</body></html>", "text/html"
    else:
        data, ctype = json.dumps(payload).encode(), "application/json; charset=utf-8"
    # A client killed mid-call (crash tests) has gone: Slack would not mind either.
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        write_reply(req, status, data, ctype, extra)
