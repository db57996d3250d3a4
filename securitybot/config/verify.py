"""The second factor behind "it was me": Duo or Okta Verify."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import SecretStr, field_validator

from securitybot.config.base import Duration, _Section


class DuoConfig(_Section):
    ikey: str | None = None
    skey: SecretStr | None = None
    api_host: str | None = None
    ca_certs: str | None = None
    username: Literal["email", "email_local_part", "slack_name"] = "email_local_part"
    timeout: Duration = 10.0

    @field_validator("api_host")
    @classmethod
    def _host(cls, v: str | None) -> str | None:
        if v is None:
            return v
        host, _, port = v.partition(":")
        if not host or (port and not port.isdigit()):
            raise ValueError("must be 'host' or 'host:port'")
        return v

    @property
    def configured(self) -> bool:
        return bool(self.ikey and self.skey and self.api_host)

    @property
    def host_and_port(self) -> tuple[str, int | None]:
        assert self.api_host
        host, _, port = self.api_host.partition(":")
        return host, int(port) if port else None


class OktaConfig(_Section):
    """Okta Verify push through Okta's Factors API (see docs/okta.md)."""

    org_url: str | None = None
    api_token: SecretStr | None = None
    ca_certs: str | None = None
    # How the Slack user's email finds the Okta user: "email" searches profile.email,
    # "login" reads the user whose Okta login is that email.
    user_field: Literal["email", "login"] = "email"
    timeout: Duration = 10.0

    @field_validator("org_url")
    @classmethod
    def _org(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = urlsplit(v)
        if parts.scheme != "https" or not parts.hostname or parts.path not in ("", "/"):
            raise ValueError("must be your Okta org's https URL, e.g. https://example.okta.com")
        return v.rstrip("/")

    @property
    def missing(self) -> list[str]:
        return [k for k in ("org_url", "api_token") if getattr(self, k) is None]

    @property
    def configured(self) -> bool:
        return not self.missing


class VerifyConfig(_Section):
    # Which second factor proves "it was me": Duo (the default) or Okta Verify.
    provider: Literal["duo", "okta"] = "duo"
