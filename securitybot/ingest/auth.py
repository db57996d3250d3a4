"""Per-source authentication for the HTTP API: bearer tokens or HMAC-SHA256 signatures.

HMAC scheme (for tools that can sign but should not hold a long-lived bearer token)::

    X-Securitybot-Source:    <source name from ingest.tokens>
    X-Securitybot-Timestamp: <unix seconds>
    X-Securitybot-Signature: v1=<hex HMAC-SHA256(hmac_secret, "<timestamp>." + raw body)>

Signing the timestamp with the body and refusing old timestamps stops late replays; each
signature is accepted once within the window (``ingest.replays``), which stops early ones.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from securitybot.config import IngestConfig, Scope
from securitybot.ingest.replays import ReplayGuard

SOURCE_HEADER = "x-securitybot-source"
TIMESTAMP_HEADER = "x-securitybot-timestamp"
SIGNATURE_HEADER = "x-securitybot-signature"


class AuthError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Principal:
    source: str
    method: str  # "bearer" | "hmac" | "query_token"
    scopes: frozenset[Scope] = frozenset({"ingest"})
    # The verified HMAC signature, so the caller can refuse its reuse (ingest.replays).
    signature: str | None = None


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


class Authenticator:
    def __init__(
        self,
        cfg: IngestConfig,
        *,
        clock: Callable[[], float] = time.time,
        replays: ReplayGuard | None = None,
    ) -> None:
        self.replays = replays
        # Compare fixed-length digests so every comparison takes the same time whatever the
        # length or prefix of what a caller sends.
        self._tokens = [
            (_digest(t.token.get_secret_value()), t.source, frozenset(t.scopes))
            for t in cfg.tokens
            if t.token
        ]
        self._hmac = {
            t.source: (t.hmac_secret.get_secret_value(), frozenset(t.scopes))
            for t in cfg.tokens
            if t.hmac_secret
        }
        self._window = cfg.replay_window
        self._clock = clock

    def authenticate(
        self, headers: Mapping[str, str], body: bytes, query_token: str | None = None
    ) -> Principal:
        auth = headers.get("authorization")
        if auth:
            scheme, _, token = auth.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise AuthError("Authorization must be 'Bearer <token>'")
            source, scopes = self._match_token(token.strip())
            return Principal(source, "bearer", scopes)
        if SIGNATURE_HEADER in headers:
            source, scopes = self._verify_hmac(headers, body)
            return Principal(source, "hmac", scopes, signature=headers[SIGNATURE_HEADER])
        if query_token:
            source, scopes = self._match_token(query_token)
            return Principal(source, "query_token", scopes)
        raise AuthError(
            "missing credentials: send 'Authorization: Bearer <token>' or an HMAC signature"
        )

    def match_token(self, token: str) -> tuple[str, frozenset[Scope]]:
        """The source and scopes of a token given outside a header (osquery's enroll secret)."""
        return self._match_token(token)

    def _match_token(self, token: str) -> tuple[str, frozenset[Scope]]:
        given = _digest(token)
        found: tuple[str, frozenset[Scope]] | None = None
        for digest, source, scopes in self._tokens:
            if hmac.compare_digest(digest, given):
                found = (source, scopes)
        if found is None:
            raise AuthError("invalid token")
        return found

    def _verify_hmac(self, headers: Mapping[str, str], body: bytes) -> tuple[str, frozenset[Scope]]:
        source = headers.get(SOURCE_HEADER, "")
        ts = headers.get(TIMESTAMP_HEADER, "")
        sig = headers.get(SIGNATURE_HEADER, "")
        if not source or not ts:
            raise AuthError(f"HMAC signatures need {SOURCE_HEADER} and {TIMESTAMP_HEADER} headers")
        try:
            ts_value = int(ts)
        except ValueError:
            raise AuthError(f"{TIMESTAMP_HEADER} must be unix seconds") from None
        if abs(self._clock() - ts_value) > self._window:
            raise AuthError("timestamp outside the replay window")
        secret, scopes = self._hmac.get(source, (None, frozenset[Scope]()))
        # Compute a signature even for unknown sources so timing does not reveal which exist.
        expected = sign(secret or "unknown-source", ts, body)
        if not hmac.compare_digest(expected.encode(), sig.encode()) or secret is None:
            raise AuthError("invalid signature")
        return source, scopes
