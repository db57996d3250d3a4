"""Dashboard roles, and how a person's groups (OIDC claims or a proxy's header) map to one.

Roles are ordered: a responder can do all a viewer can, an admin all a responder can. Pure
functions only; where the claims or headers come from is the callers' business.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from enum import IntEnum
from typing import Any


class Role(IntEnum):
    viewer = 1  # reads every page
    responder = 2  # handles escalations: revokes snoozes
    admin = 3  # manages suppression rules (and installs, exemptions)

    @classmethod
    def parse(cls, name: str | None) -> Role | None:
        return cls.__members__.get(name) if name else None


def highest(values: Iterable[str], roles: Mapping[str, Sequence[str]]) -> Role | None:
    """The highest role that any of ``values`` is listed under in ``roles`` (role name ->
    values), or None."""
    have = set(values)
    granted = [Role[name] for name, listed in roles.items() if have.intersection(listed)]
    return max(granted, default=None)


def claim_values(claims: Mapping[str, Any], name: str) -> list[str]:
    """The string values of one claim: a list's strings, or a single string.

    ``email`` counts only when the provider vouches for it (``email_verified`` is true): an
    unverified address is whatever the person typed. A name that is not a claim is read as a
    dotted path into nested objects (Keycloak's ``realm_access.roles``); a claim whose own name
    has dots (Auth0's ``https://example.com/roles``) is found first.
    """
    if name == "email" and claims.get("email_verified") is not True:
        return []
    value: Any = claims.get(name)
    if value is None and "." in name:
        value = claims
        for part in name.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def role_from_claims(
    claims: Mapping[str, Any], names: Sequence[str], roles: Mapping[str, Sequence[str]]
) -> Role | None:
    return highest((v for name in names for v in claim_values(claims, name)), roles)


def header_groups(value: str | None) -> list[str]:
    """Groups from a proxy header: comma-separated (as oauth2-proxy's X-Forwarded-Groups)."""
    return [g.strip() for g in (value or "").split(",") if g.strip()]
