"""The MAC on every AER stream message: workers act only on what the API published.

``Securitybot-Mac: t=<unix ms>,v1=<hex>`` is the HMAC-SHA256 under ``aer.stream.signing_key``
of ``v1\n<t>\n<subject>\n<Nats-Msg-Id>\n`` followed by the body. A worker accepts a message
signed with ``signing_key`` or ``signing_key_previous`` (rotation) within ``duplicate_window``
of when JetStream stored it: JetStream drops a re-sent message id within the same window, so
a captured message cannot be replayed. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence
from datetime import datetime

from securitybot import constant_time
from securitybot.config import AerStream

MAC_HEADER = "Securitybot-Mac"
_MSG_ID_HEADER = "Nats-Msg-Id"


def _mac_input(at_ms: int, subj: str, msg_id: str, body: bytes) -> bytes:
    return f"v1\n{at_ms}\n{subj}\n{msg_id}\n".encode() + body


def sign(key: bytes, subj: str, msg_id: str, body: bytes, at_ms: int | None = None) -> str:
    """The ``Securitybot-Mac`` header value for a message signed now (or at ``at_ms``)."""
    at = int(time.time() * 1000) if at_ms is None else at_ms
    mac = hmac.new(key, _mac_input(at, subj, msg_id, body), hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


def check_mac(
    keys: Sequence[bytes], subj: str, headers: dict[str, str] | None, body: bytes,
    stored_at: datetime, window: float,
) -> str | None:  # fmt: skip
    """None when a key in ``keys`` signed the message within ``window`` seconds of when
    JetStream stored it; else the dead-letter reason: missing_mac, bad_mac or expired_mac."""
    headers = headers or {}
    value = headers.get(MAC_HEADER)
    if not value:
        return "missing_mac"
    parts = dict(p.partition("=")[::2] for p in value.split(","))
    at_text, given = parts.get("t", ""), parts.get("v1", "")
    if not (at_text.isascii() and at_text.isdigit() and len(at_text) <= 16 and len(given) == 64):
        return "bad_mac"
    data = _mac_input(int(at_text), subj, headers.get(_MSG_ID_HEADER, ""), body)
    if not any(
        constant_time.equal(hmac.new(k, data, hashlib.sha256).hexdigest(), given) for k in keys
    ):
        return "bad_mac"
    if abs(stored_at.timestamp() - int(at_text) / 1000) > window:
        return "expired_mac"
    return None


def signing_keys(cfg: AerStream) -> list[bytes]:
    """Keys a worker accepts: the current one, then the previous one during a rotation."""
    return [k.get_secret_value().encode() for k in (cfg.signing_key, cfg.signing_key_previous)
            if k is not None]  # fmt: skip
