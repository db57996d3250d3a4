"""The HMAC request signature, version 2: one function for the server, the CLI and the docs.

A v2 signature covers the whole request, so it is valid for exactly one request::

    X-Securitybot-Source:    <source name from ingest.tokens>
    X-Securitybot-Timestamp: <unix seconds>
    X-Securitybot-Nonce:     <optional: 1-128 of A-Z a-z 0-9 - . _ ~>
    X-Securitybot-Signature: v2=<hex HMAC-SHA256(hmac_secret, string to sign)>

The string to sign is seven parts joined by a line feed (``\\n``), the body last and verbatim::

    v2
    <timestamp, as sent in X-Securitybot-Timestamp>
    <nonce, as sent in X-Securitybot-Nonce, or empty>
    <method, upper case>
    <canonical path>
    <canonical query>
    <raw body bytes, empty for none>

- canonical path: the path percent-decoded, then percent-encoded as RFC 3986 wants (every
  byte but ``A-Z a-z 0-9 - . _ ~`` and ``/`` as ``%XX``, upper-case hex); ``/api/v1/alerts``
  stays itself.
- canonical query: each ``name=value`` pair of the query string (``+`` read as a space, a pair
  without ``=`` as an empty value, empty pairs dropped), name and value percent-decoded then
  encoded as above (``/`` encoded too), sorted by name then value, joined with ``&``; empty
  when there is no query. ``?status=escalated&limit=5`` becomes ``limit=5&status=escalated``.

v1 (``"<timestamp>." + body``) left the method, path and query out: a captured request
could be resent with ``?r=1`` or as another method on another path. It is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote, quote_from_bytes, unquote, unquote_to_bytes

VERSION = "v2"
SOURCE_HEADER = "X-Securitybot-Source"
TIMESTAMP_HEADER = "X-Securitybot-Timestamp"
NONCE_HEADER = "X-Securitybot-Nonce"
SIGNATURE_HEADER = "X-Securitybot-Signature"
NONCE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
MAX_NONCE = 128


def canonical_path(path: str, *, decoded: bool = False) -> str:
    """``path`` percent-decoded (unless the server already did: ``decoded``) and re-encoded."""
    return quote(path if decoded else unquote(path, errors="surrogateescape"), safe="/",
                 errors="surrogateescape")  # fmt: skip


def canonical_query(query: str | bytes) -> str:
    """The sorted, RFC 3986-encoded ``name=value`` pairs of a raw query string."""
    if not query:
        return ""
    raw = query.encode() if isinstance(query, str) else query
    pairs = []
    for part in raw.split(b"&"):
        if not part:
            continue
        name, _, value = part.partition(b"=")
        pairs.append((_component(name), _component(value)))
    pairs.sort()
    return "&".join(f"{n}={v}" for n, v in pairs)


def _component(raw: bytes) -> str:
    return quote_from_bytes(unquote_to_bytes(raw.replace(b"+", b" ")), safe="")


def string_to_sign(*, timestamp: str, nonce: str, method: str, path: str, query: str,
                   body: bytes) -> bytes:  # fmt: skip
    """The bytes a v2 signature covers; ``path`` and ``query`` already canonical."""
    head = "\n".join((VERSION, timestamp, nonce, method.upper(), path, query, ""))
    return head.encode() + body


def sign(secret: str | bytes, message: bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return f"{VERSION}=" + hmac.new(key, message, hashlib.sha256).hexdigest()


def signed_headers(
    source: str,
    secret: str,
    method: str,
    path: str,
    query: str = "",
    body: bytes = b"",
    *,
    timestamp: int | None = None,
    nonce: str = "",
) -> dict[str, str]:
    """The headers that sign one request (``path`` and ``query`` as they will be sent)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    message = string_to_sign(timestamp=ts, nonce=nonce, method=method,
                             path=canonical_path(path), query=canonical_query(query),
                             body=body)  # fmt: skip
    headers = {SOURCE_HEADER: source, TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: sign(secret, message)}
    if nonce:
        headers[NONCE_HEADER] = nonce
    return headers
