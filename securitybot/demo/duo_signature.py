"""How the fake Duo checks a request's signature, the way Duo's Auth API does.

Written from Duo's documentation (https://duo.com/docs/authapi, "Authentication"), not from
duo_client's code, so a client that signs wrongly (wrong skey, a host with its port, the wrong
signature version) fails here exactly as it would against Duo.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import quote

from securitybot import constant_time

Json = dict[str, Any]


class DuoError(Exception):
    """An answer in Duo's error shape: ``{"stat": "FAIL", "code", "message"}`` (and
    ``message_detail`` where Duo names the parameter)."""

    def __init__(self, status: int, code: int, message: str, detail: str | None = None):
        super().__init__(message)
        self.body: Json = {"stat": "FAIL", "code": code, "message": message}
        if detail is not None:
            self.body["message_detail"] = detail
        self.status = status


class Integration(Protocol):
    ikey: str
    skey: str
    host: str
    max_clock_skew: float | None  # seconds; None skips the Date check


def _canon_params(params: dict[str, list[str]]) -> str:
    # OAuth 1.0-style normalisation: sorted, RFC 3986 quoted keys and values.
    pairs: list[str] = []
    for key, values in sorted((quote(k, "~"), v) for k, v in params.items()):
        pairs.extend(f"{key}={val}" for val in sorted(quote(v, "~") for v in values))
    return "&".join(pairs)


def _sha512(text: str) -> str:
    return hashlib.sha512(text.encode()).hexdigest()


def check_signature(
    duo: Integration,
    method: str,
    path: str,
    signed: dict[str, list[str]],
    body: str,
    is_json: bool,
    headers: dict[str, str],
) -> int:
    """Return the signature version that matched, or raise Duo's 401."""
    auth, date = headers.get("authorization", ""), headers.get("date", "")
    try:
        ikey, _, sig = base64.b64decode(auth.removeprefix("Basic ")).decode().partition(":")
    except ValueError:
        ikey = sig = ""
    if not auth.startswith("Basic ") or not sig:
        raise DuoError(401, 40101, "Missing request credentials")
    if not date:
        raise DuoError(401, 40104, "Missing required Date header")
    if duo.max_clock_skew is not None:
        try:
            skew = abs(parsedate_to_datetime(date).timestamp() - time.time())
        except (TypeError, ValueError):
            skew = float("inf")
        if skew > duo.max_clock_skew:
            raise DuoError(401, 40105, "Request date was too far in the past")
    if ikey != duo.ikey:
        raise DuoError(401, 40102, "Invalid integration key in request credentials")
    # The signed host is Duo's API hostname only; a port never appears in it.
    head = [date, method.upper(), duo.host.lower(), path]
    xduo = sorted((k, v) for k, v in headers.items() if k.startswith("x-duo-"))
    xduo_hash = _sha512("\x00".join(part for kv in xduo for part in kv))
    # duo_client sig v4/v5 sign JSON POST bodies (params then go unsigned as {}) or,
    # for GET, the query with an empty body; v1/v2 sign form/query params only.
    canon_params = "" if is_json else _canon_params(signed)
    content = body if is_json else ""
    candidates: list[tuple[int, str, Any]] = []
    if is_json or method == "GET":
        v4 = "\n".join([*head, canon_params, _sha512(content)])
        candidates += [(5, f"{v4}\n{xduo_hash}", hashlib.sha512), (4, v4, hashlib.sha512)]
    if not is_json:
        v2 = "\n".join([*head, canon_params])
        v1 = "\n".join([*head[1:], canon_params])
        for digest in (hashlib.sha512, hashlib.sha1):
            candidates += [(2, v2, digest), (1, v1, digest)]
    for version, canon, digest in candidates:
        expected = hmac.new(duo.skey.encode(), canon.encode(), digest).hexdigest()
        if constant_time.equal(expected, sig):
            return version
    raise DuoError(401, 40103, "Invalid signature in request credentials")
