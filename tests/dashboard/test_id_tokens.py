"""ID token validation (OpenID Connect Core 1.0, section 3.1.3.7) and role mapping from claims.

The tokens are signed here with keys made here; their claims are the ones the specification
lists for an ID token (iss, sub, aud, exp, iat, nonce, optional azp). The whole flow against a
real provider is in tests/browser/test_dashboard_oidc.py.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from securitybot.dashboard.oidc import OidcError, validate_id_token
from securitybot.dashboard.roles import Role, role_from_claims

ISSUER = "https://idp.example.com"
CLIENT_ID = "securitybot-dashboard"
NONCE = "n-0S6_WzA2Mj"
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"}, private=True)
JWKS = {"keys": [KEY.as_dict(private=False)]}
SKEW = 60


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    out = {"iss": ISSUER, "sub": "248289761001", "aud": CLIENT_ID, "nonce": NONCE,
           "exp": now + 300, "iat": now, "email": "jane@example.com"}  # fmt: skip
    out.update(changes)
    return {k: v for k, v in out.items() if v is not None}


def token(body: dict[str, Any], key: Any = KEY, alg: str = "RS256") -> str:
    return jwt.encode({"alg": alg, "kid": "k1"}, body, key, algorithms=[alg])


def check(raw: str) -> dict[str, Any]:
    return validate_id_token(raw, jwks=JWKS, issuer=ISSUER, client_id=CLIENT_ID, nonce=NONCE,
                             algorithms=["RS256"], leeway=SKEW)  # fmt: skip


def refused(raw: str) -> str:
    with pytest.raises(OidcError) as info:
        check(raw)
    assert info.value.reason == "id_token_invalid"
    return info.value.message


def test_a_valid_id_token_gives_its_claims() -> None:
    got = check(token(claims()))
    assert got["sub"] == "248289761001" and got["email"] == "jane@example.com"


def test_expiry_is_judged_with_the_bounded_clock_skew() -> None:
    now = int(time.time())
    assert check(token(claims(exp=now - SKEW // 2, iat=now - 300)))  # within the skew
    assert "expired" in refused(token(claims(exp=now - SKEW - 5, iat=now - 300)))


def test_a_token_issued_in_the_future_beyond_the_skew_is_refused() -> None:
    now = int(time.time())
    assert check(token(claims(iat=now + SKEW // 2)))
    assert "iat" in refused(token(claims(iat=now + SKEW + 30, exp=now + 900)))


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"iss": "https://evil.example.com"}, "iss"),
        ({"aud": "another-client"}, "aud"),
        ({"aud": [CLIENT_ID, "another-client"]}, "azp"),  # several audiences need azp = us
        ({"aud": [CLIENT_ID, "another-client"], "azp": "another-client"}, "azp"),
        ({"nonce": "replayed-nonce"}, "nonce"),
        ({"nonce": None}, "nonce"),
        ({"sub": None}, "sub"),
        ({"exp": None}, "exp"),
    ],
)
def test_a_claim_that_does_not_match_is_refused(changes: dict[str, Any], named: str) -> None:
    assert named in refused(token(claims(**changes)))


def test_several_audiences_with_us_as_the_authorized_party_are_accepted() -> None:
    assert check(token(claims(aud=[CLIENT_ID, "api"], azp=CLIENT_ID)))


def test_a_signature_by_another_key_is_refused() -> None:
    other = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)
    assert "signature" in refused(token(claims(), key=other))


def test_unsigned_and_symmetric_tokens_are_refused() -> None:
    body = token(claims()).split(".")[1]
    # alg "none": a header, the claims and an empty signature.
    unsigned = "eyJhbGciOiJub25lIn0." + body + "."
    assert "alg" in refused(unsigned)
    hs = token(claims(), key=OctKey.import_key("k" * 32), alg="HS256")
    assert "alg" in refused(hs)


def test_garbage_is_refused() -> None:
    for raw in ("", "a.b.c", "not a token", "é.é.é"):
        refused(raw)


ROLES = {"admin": ["sec-admins"], "responder": ["sec-oncall"], "viewer": ["sec-analysts", "x.com"]}


@pytest.mark.parametrize(
    ("names", "token_claims", "role"),
    [
        (["groups"], {"groups": ["staff", "sec-oncall", "sec-analysts"]}, Role.responder),
        (["groups"], {"groups": ["sec-admins"]}, Role.admin),
        (["groups"], {"groups": ["marketing"]}, None),
        (["groups"], {"groups": "sec-admins"}, Role.admin),  # a single value, not a list
        (["groups"], {"groups": [{"name": "sec-admins"}, 7, None]}, None),  # not strings
        (["groups"], {}, None),
        # Google has no groups claim: the Workspace domain (hd), or verified addresses.
        (["hd"], {"hd": "x.com"}, Role.viewer),
        (["email"], {"email": "sec-admins", "email_verified": True}, Role.admin),
        (["email"], {"email": "sec-admins", "email_verified": False}, None),
        (["email"], {"email": "sec-admins"}, None),
        (
            ["hd", "email"],
            {"hd": "x.com", "email": "sec-oncall", "email_verified": True},
            Role.responder,
        ),
        # Keycloak nests its roles; a claim named with dots (Auth0's namespaces) comes first.
        (["realm_access.roles"], {"realm_access": {"roles": ["sec-oncall"]}}, Role.responder),
        (["https://x.com/roles"], {"https://x.com/roles": ["sec-admins"]}, Role.admin),
    ],
)
def test_the_highest_role_any_claim_value_maps_to(
    names: list[str], token_claims: dict[str, Any], role: Role | None
) -> None:
    assert role_from_claims(token_claims, names, ROLES) == role


def test_a_key_the_jwks_lacks_is_told_apart_so_the_keys_are_read_again() -> None:
    rotated = RSAKey.generate_key(2048, parameters={"kid": "k2"}, private=True)
    raw = jwt.encode({"alg": "RS256", "kid": "k2"}, claims(), rotated, algorithms=["RS256"])
    with pytest.raises(OidcError) as info:
        check(raw)
    assert info.value.reason == "unknown_key"
    jwks = {"keys": [*JWKS["keys"], rotated.as_dict(private=False)]}
    got = validate_id_token(raw, jwks=jwks, issuer=ISSUER, client_id=CLIENT_ID, nonce=NONCE,
                            algorithms=["RS256"], leeway=SKEW)  # fmt: skip
    assert got["sub"] == "248289761001"
