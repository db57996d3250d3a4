"""OpenID Connect sign-in with Authlib: discovery, the authorization request (code flow with
PKCE, ``state`` and ``nonce``), the code exchange, and the ID token's signature and claims.

What the browser carries between the redirect and the callback (state, nonce, PKCE verifier)
is the caller's business (``oidc_views`` keeps it in a signed cookie bound to the browser).
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.deprecate import AuthlibDeprecationWarning
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    InvalidKeyIdError,
    JoseError,
    UnsupportedAlgorithmError,
)
from joserfc.jwk import KeySet

# Authlib 1.9 prefers httpx2 and warns on every start when it finds httpx (which Securitybot
# uses everywhere): one warning for the operator to read at start-up, about a library's plans.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError

from securitybot import constant_time
from securitybot.config import DashboardOidc

log = logging.getLogger(__name__)

# Only signatures by the provider's published public keys. "none" is no signature, and HS256
# would be keyed with our own client secret, which signs nothing the provider vouches for.
ASYMMETRIC = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
    "Ed25519",
)
METADATA_TTL = 3600.0  # seconds a discovery document is used before it is read again


class OidcError(Exception):
    """A sign-in that did not go through: ``reason`` is a short code for the audit log and the
    logs, ``message`` a sentence for the person, ``status`` the HTTP status of their page."""

    def __init__(self, reason: str, message: str, status: int = 400) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason, self.message, self.status = reason, message, status


@dataclass(frozen=True)
class Pending:
    """One sign-in between the redirect to the provider and its callback."""

    state: str
    nonce: str
    verifier: str
    next: str


def _refused(exc: Exception) -> OidcError:
    if isinstance(exc, ExpiredTokenError):
        why = "it has expired (or the provider's clock is off by more than the allowed skew)"
    elif isinstance(exc, ClaimError):
        why = f"its '{exc.claim}' claim is missing or wrong ({exc.description})"
    elif isinstance(exc, BadSignatureError):
        why = "its signature does not verify with the provider's keys"
    elif isinstance(exc, UnsupportedAlgorithmError):
        why = "its signing alg is not one the provider publishes, or not an asymmetric one"
    else:
        why = "it is not a signed JWT"
    return OidcError("id_token_invalid", f"The identity provider's ID token was refused: {why}.")


def validate_id_token(
    raw: str,
    *,
    jwks: Mapping[str, Any],
    issuer: str,
    client_id: str,
    nonce: str,
    algorithms: Sequence[str],
    leeway: float,
    access_token: str | None = None,
) -> dict[str, Any]:
    """The claims of an ID token from the token endpoint, after OpenID Connect Core 3.1.3.7:
    signed by one of the provider's keys with an allowed algorithm, ``iss`` and ``aud`` (and
    ``azp``) ours, ``nonce`` the one we sent, ``exp`` and ``iat`` within ``leeway`` seconds
    of our clock, ``at_hash`` matching the access token when present.

    Raises OidcError; reason ``unknown_key`` when the token names a key the JWKS lacks (the
    provider may have rotated its keys: read them again and retry).
    """
    allowed = [a for a in algorithms if a in ASYMMETRIC]
    try:
        keys = KeySet.import_key_set(dict(jwks))  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise OidcError(
            "jwks_invalid", "The identity provider's keys (JWKS) are unreadable.", 502
        ) from exc
    try:
        token = jwt.decode(raw, keys, algorithms=allowed)
        claims = CodeIDToken(
            token.claims,
            token.header,
            {
                "iss": {"essential": True, "value": issuer},
                "aud": {"essential": True, "value": client_id},
            },
            {"client_id": client_id, "nonce": nonce, "access_token": access_token},
        )
        claims.validate(leeway=int(leeway))
    except InvalidKeyIdError as exc:
        raise OidcError(
            "unknown_key", "The ID token names a key the provider does not list."
        ) from exc
    except (JoseError, ValueError, TypeError, UnicodeError) as exc:
        raise _refused(exc) from exc
    return dict(claims)


class OidcClient:
    """One configured provider: its discovery document and keys, read when first needed and
    kept (the keys are read again when a token names one they lack)."""

    def __init__(self, cfg: DashboardOidc) -> None:
        self.cfg = cfg
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._jwks: dict[str, Any] | None = None

    def _oauth(self) -> AsyncOAuth2Client:
        secret = self.cfg.client_secret.get_secret_value() if self.cfg.client_secret else None
        return AsyncOAuth2Client(
            client_id=self.cfg.client_id,
            client_secret=secret,
            scope=" ".join(self.cfg.scopes),
            redirect_uri=self.cfg.redirect_url,
            code_challenge_method="S256",
            token_endpoint_auth_method="client_secret_basic" if secret else "none",
            timeout=self.cfg.timeout,
        )

    async def _get_json(self, url: str, what: str, **kw: Any) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(timeout=self.cfg.timeout) as http:
                resp = await http.get(url, **kw)
            resp.raise_for_status()
            data = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("oidc: %s at %s failed: %s", what, url, exc)
            raise OidcError(
                "provider_unreachable",
                f"The identity provider's {what} could "
                "not be read; try again, or ask an administrator.",
                502,
            ) from exc
        if not isinstance(data, dict):
            raise OidcError(
                "provider_unreachable", f"The identity provider's {what} is not a JSON object.", 502
            )
        return data

    async def metadata(self) -> dict[str, Any]:
        if self._metadata is not None and time.monotonic() - self._metadata_at < METADATA_TTL:
            return self._metadata
        url = self.cfg.issuer.rstrip("/") + "/.well-known/openid-configuration"
        data = await self._get_json(url, "discovery document")
        # OpenID Connect Discovery 4.3: the document must name exactly the issuer we asked,
        # or tokens signed for another tenant could be taken for ours.
        if data.get("issuer") != self.cfg.issuer:
            raise OidcError(
                "issuer_mismatch",
                f"The discovery document names issuer "
                f"{data.get('issuer')!r}, not {self.cfg.issuer!r}.",
                502,
            )
        missing = [
            k
            for k in ("authorization_endpoint", "token_endpoint", "jwks_uri")
            if not isinstance(data.get(k), str)
        ]
        methods = data.get("code_challenge_methods_supported")
        if missing or (isinstance(methods, list) and "S256" not in methods):
            what = ", ".join(missing) if missing else "PKCE with S256"
            raise OidcError(
                "provider_unsupported",
                f"The identity provider's discovery document lacks {what}.",
                502,
            )
        self._metadata, self._metadata_at = data, time.monotonic()
        return data

    async def _keys(self, refresh: bool = False) -> dict[str, Any]:
        if self._jwks is None or refresh:
            uri = (await self.metadata())["jwks_uri"]
            self._jwks = await self._get_json(uri, "keys (JWKS)")
        return self._jwks

    async def begin(self, next_path: str) -> tuple[str, Pending]:
        """The provider's authorization URL to send the browser to, and what to keep."""
        metadata = await self.metadata()
        pending = Pending(generate_token(32), generate_token(32), generate_token(64), next_path)
        async with self._oauth() as client:
            url, _state = client.create_authorization_url(
                metadata["authorization_endpoint"],
                state=pending.state,
                nonce=pending.nonce,
                code_verifier=pending.verifier,
            )
        return str(url), pending

    async def finish(self, pending: Pending, params: Mapping[str, str]) -> dict[str, Any]:
        """The signed-in person's claims, from the callback's query ``params``."""
        if not constant_time.equal(pending.state, params.get("state", "")):
            raise OidcError(
                "state_mismatch",
                "The sign-in's state does not match the one this browser started; start again.",
            )
        if "error" in params:
            detail = params.get("error_description") or params["error"]
            raise OidcError(
                "provider_refused",
                f"The identity provider did not sign you in: {detail[:200]}",
                403,
            )
        # RFC 9207: a provider that names itself in the response must be ours (mix-up attacks).
        if "iss" in params and params["iss"] != self.cfg.issuer:
            raise OidcError("issuer_mismatch", "The response came from another issuer.")
        code = params.get("code")
        if not code:
            raise OidcError("no_code", "The identity provider sent no authorization code.")
        metadata = await self.metadata()
        try:
            async with self._oauth() as client:
                token = await client.fetch_token(
                    metadata["token_endpoint"],
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=pending.verifier,
                )
        except OAuthError as exc:
            raise OidcError(
                "code_refused",
                f"The identity provider refused the authorization code ({exc.error}); start again.",
            ) from exc
        except (httpx.HTTPError, ValueError) as exc:  # ValueError: a body that is not JSON
            raise OidcError(
                "provider_unreachable",
                "The identity provider's token endpoint could not be reached or answered "
                "something unreadable; try again.",
                502,
            ) from exc
        raw = token.get("id_token")
        if not isinstance(raw, str):
            raise OidcError("id_token_missing", "The identity provider sent no ID token.")
        claims = await self._validate(raw, metadata, token.get("access_token"), pending.nonce)
        return await self._with_userinfo(claims, metadata, token.get("access_token"))

    async def _validate(
        self, raw: str, metadata: Mapping[str, Any], access_token: Any, nonce: str
    ) -> dict[str, Any]:
        algorithms = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]

        def check(jwks: Mapping[str, Any]) -> dict[str, Any]:
            return validate_id_token(
                raw,
                jwks=jwks,
                issuer=self.cfg.issuer,
                client_id=self.cfg.client_id,
                nonce=nonce,
                algorithms=[a for a in algorithms if isinstance(a, str)],
                leeway=self.cfg.clock_skew,
                access_token=access_token if isinstance(access_token, str) else None,
            )

        try:
            return check(await self._keys())
        except OidcError as exc:
            if exc.reason != "unknown_key":
                raise
        # The provider rotated its keys since we read them.
        return check(await self._keys(refresh=True))

    async def _with_userinfo(
        self, claims: dict[str, Any], metadata: Mapping[str, Any], access_token: Any
    ) -> dict[str, Any]:
        """Claims the ID token lacks, from the UserInfo endpoint: some providers (and the
        OpenID Connect default for the code flow) put scope claims such as groups only there.
        The ID token's own claims always win."""
        url = metadata.get("userinfo_endpoint")
        if not isinstance(url, str) or not isinstance(access_token, str):
            return claims
        try:
            info = await self._get_json(
                url, "UserInfo", headers={"Authorization": f"Bearer {access_token}"}
            )
        except OidcError:
            return claims  # the ID token alone still identifies the person
        # Core 5.3.2: a UserInfo answer about anyone else must not be used.
        if info.get("sub") != claims.get("sub"):
            log.warning("oidc: UserInfo named another subject; its claims are ignored")
            return claims
        return {**info, **claims}
