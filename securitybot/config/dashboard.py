"""The web dashboard: who signs in (local users, OIDC, a trusted proxy) and with which role."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from securitybot.config.base import Duration, _Section

DashboardRole = Literal["viewer", "responder", "admin"]


class DashboardUser(_Section):
    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@\-]+$")
    # An argon2 hash from `securitybot hash-password`; plain passwords are refused.
    password_hash: SecretStr
    # Local users are break-glass accounts. Before roles existed every signed-in person could
    # do everything, so a user configured without a role is an admin (docs/upgrades.md).
    role: DashboardRole = "admin"

    @field_validator("password_hash")
    @classmethod
    def _argon2(cls, v: SecretStr) -> SecretStr:
        if not v.get_secret_value().startswith("$argon2"):
            raise ValueError("must be an argon2 hash (make one with `securitybot hash-password`)")
        return v


class DashboardRoles(_Section):
    """Which values of the OIDC role claims (or of ``trusted_groups_header``) grant each role;
    a person with several gets the highest. Viewers read; responders also revoke snoozes;
    admins also manage suppression rules (and whatever later needs an admin)."""

    admin: list[str] = Field(default_factory=list)
    responder: list[str] = Field(default_factory=list)
    viewer: list[str] = Field(default_factory=list)

    def as_mapping(self) -> dict[str, list[str]]:
        return {"admin": self.admin, "responder": self.responder, "viewer": self.viewer}


_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
OIDC_CALLBACK_PATH = "/dashboard/oidc/callback"


class DashboardOidc(_Section):
    """Sign-in through the company's OpenID Connect provider (Okta, Entra ID, Google, ...)."""

    # The provider's issuer identifier; discovery reads <issuer>/.well-known/openid-configuration
    # and must name exactly this issuer.
    issuer: str
    client_id: str = Field(min_length=1)
    # SECURITYBOT_DASHBOARD__OIDC__CLIENT_SECRET(_FILE); unset: a public client (PKCE only).
    client_secret: SecretStr | None = None
    scopes: list[str] = Field(default_factory=lambda: ["openid", "email", "profile"])
    # Where the provider sends the browser back: registered with the provider as is.
    redirect_url: str
    # The claim(s) whose values `dashboard.roles` maps: a list (Okta's and Entra's "groups"),
    # a string (Google's "hd"), "email" (only when email_verified is true), or a dotted path
    # into an object ("realm_access.roles").
    roles_claim: list[str] = Field(default_factory=lambda: ["groups"], min_length=1)
    # How far the provider's clock may be off ours when judging the ID token's exp and iat.
    clock_skew: Duration = Field(default=60.0, le=300.0)
    # The button on the sign-in page: "Sign in with <name>".
    name: str = Field(default="single sign-on", min_length=1, max_length=64)
    timeout: Duration = Field(default=10.0, le=60.0)

    @field_validator("roles_claim", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("issuer")
    @classmethod
    def _issuer_url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.query or parts.fragment or not parts.hostname:
            raise ValueError("must be the provider's issuer URL, without query or fragment")
        if parts.scheme != "https" and not (
            parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS
        ):
            raise ValueError("must be an https URL (plain http only for a local test provider)")
        return v

    @field_validator("scopes")
    @classmethod
    def _openid(cls, v: list[str]) -> list[str]:
        if "openid" not in v:
            raise ValueError("must include 'openid'")
        return v

    @field_validator("redirect_url")
    @classmethod
    def _callback(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("must be the absolute URL people reach the dashboard at")
        if parts.path != OIDC_CALLBACK_PATH or parts.query or parts.fragment:
            raise ValueError(
                f"must end in {OIDC_CALLBACK_PATH} (e.g. https://host{OIDC_CALLBACK_PATH})"
            )
        return v


class DashboardConfig(_Section):
    enabled: bool = False
    users: list[DashboardUser] = Field(default_factory=list)
    # false: the users above are refused (sign-in goes through OIDC or the trusted header only).
    local_users: bool = True
    oidc: DashboardOidc | None = None
    roles: DashboardRoles = DashboardRoles()
    # Behind an authenticating reverse proxy: the header carrying the signed-in username. The
    # proxy must strip this header from client requests, or anyone can claim to be anyone.
    trusted_header: str | None = None
    # The proxy's header with the person's groups (comma-separated), mapped by `roles`; the
    # proxy must strip it from client requests too.
    trusted_groups_header: str | None = None
    # A role per trusted_header username. With neither this nor trusted_groups_header, every
    # header user is an admin, as before roles existed.
    trusted_header_roles: dict[str, DashboardRole] = Field(default_factory=dict)
    session_secret: SecretStr | None = None
    # "auto": Secure cookies when the request came over https (directly or per X-Forwarded-Proto).
    secure_cookies: Literal["auto", "true", "false"] = "auto"
    session_lifetime: Duration = 8 * 3600.0
    # Reverse proxies whose X-Forwarded-For is believed (CIDRs) when counting sign-in attempts
    # per client address. Empty: the TCP peer is the client, whatever the header says.
    trusted_proxies: list[IPv4Network | IPv6Network] = Field(default_factory=list)

    @field_validator("secure_cookies", mode="before")
    @classmethod
    def _tri_state(cls, v: Any) -> Any:
        return str(v).lower() if isinstance(v, bool) else v

    @model_validator(mode="after")
    def _complete(self) -> DashboardConfig:
        if not self.enabled:
            return self
        if self.session_secret is None or len(self.session_secret.get_secret_value()) < 32:
            raise ValueError("session_secret (at least 32 characters) is required when enabled")
        local = bool(self.users) and self.local_users
        if not (local or self.trusted_header or self.oidc):
            if self.users:
                raise ValueError(
                    "local_users is false and there is no 'oidc' or 'trusted_header': "
                    "nobody could sign in"
                )
            raise ValueError("enabled needs 'oidc', 'users' or a 'trusted_header'")
        if (self.trusted_groups_header or self.trusted_header_roles) and not self.trusted_header:
            raise ValueError("trusted_groups_header and trusted_header_roles need trusted_header")
        names = [u.username for u in self.users]
        if len(names) != len(set(names)):
            raise ValueError("users: the same username is listed twice")
        return self
