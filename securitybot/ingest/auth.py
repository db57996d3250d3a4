"""Per-source authentication for the HTTP API: bearer tokens or HMAC-SHA256 signatures.

HMAC scheme (for tools that can sign but should not hold a long-lived bearer token): version 2
of ``securitybot.ingest.signing``, over the timestamp, an optional nonce, the method, path,
query and body. Refusing old timestamps stops late replays; each signature is accepted once
within the window (``ingest.replays``), which stops early ones; and as it covers the whole
request, a captured one cannot be sent with another query, method, path or body.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from securitybot import constant_time
from securitybot.config import IngestConfig, Scope
from securitybot.ingest import signing
from securitybot.ingest.replays import ReplayGuard

SOURCE_HEADER = "x-securitybot-source"
TIMESTAMP_HEADER = "x-securitybot-timestamp"
NONCE_HEADER = "x-securitybot-nonce"
SIGNATURE_HEADER = "x-securitybot-signature"


@dataclass(frozen=True)
class Target:
    """What a signature must name: the method, the path as the server decoded it
    (``scope["path"]``) and the raw query string."""

    method: str
    path: str
    query: bytes = b""


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
        self,
        headers: Mapping[str, str],
        body: bytes,
        query_token: str | None = None,
        target: Target | None = None,
    ) -> Principal:
        auth = headers.get("authorization")
        if auth:
            scheme, _, token = auth.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise AuthError("Authorization must be 'Bearer <token>'")
            source, scopes = self._match_token(token.strip())
            return Principal(source, "bearer", scopes)
        if SIGNATURE_HEADER in headers:
            if target is None:
                raise AuthError("this endpoint does not take HMAC signatures")
            source, scopes = self._verify_hmac(headers, body, target)
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
            if constant_time.equal(digest, given):
                found = (source, scopes)
        if found is None:
            raise AuthError("invalid token")
        return found

    def _verify_hmac(
        self, headers: Mapping[str, str], body: bytes, target: Target
    ) -> tuple[str, frozenset[Scope]]:
        source = headers.get(SOURCE_HEADER, "")
        ts = headers.get(TIMESTAMP_HEADER, "")
        nonce = headers.get(NONCE_HEADER, "")
        sig = headers.get(SIGNATURE_HEADER, "")
        if not source or not ts:
            raise AuthError(f"HMAC signatures need {SOURCE_HEADER} and {TIMESTAMP_HEADER} headers")
        # ASCII digits only: int() also takes "+1_7e9", " 17 " and other scripts' digits.
        if not (ts.isascii() and ts.isdigit() and len(ts) <= 12):
            raise AuthError(f"{TIMESTAMP_HEADER} must be unix seconds")
        if abs(self._clock() - int(ts)) > self._window:
            raise AuthError("timestamp outside the replay window")
        if nonce and (len(nonce) > signing.MAX_NONCE or not set(nonce) <= signing.NONCE_CHARS):
            raise AuthError(f"{NONCE_HEADER} must be 1-128 of A-Z a-z 0-9 - . _ ~")
        if not sig.startswith(f"{signing.VERSION}="):
            raise AuthError(
                f"{SIGNATURE_HEADER} must be a v2= signature over the method, path, query and "
                "body (v1, over the timestamp and body only, is no longer accepted; see README)"
            )
        secret, scopes = self._hmac.get(source, (None, frozenset[Scope]()))
        message = signing.string_to_sign(
            timestamp=ts, nonce=nonce, method=target.method,
            path=signing.canonical_path(target.path, decoded=True),
            query=signing.canonical_query(target.query), body=body,
        )  # fmt: skip
        # Compute a signature even for unknown sources so timing does not reveal which exist.
        expected = signing.sign(secret or "unknown-source", message)
        if not constant_time.equal(expected, sig) or secret is None:
            raise AuthError("invalid signature")
        return source, scopes
