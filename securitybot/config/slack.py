"""Slack: the bot's credentials, the security channel and the workspaces served."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator

from securitybot.config.base import Duration, _Section


class SlackOAuthConfig(_Section):
    """Several workspaces without Enterprise Grid: each installs the app through Slack's OAuth
    flow (the dashboard's ``/dashboard/slack/install``, admins), and its bot token is kept in
    the database (slack_installations, slack_bots). Unset: the single ``bot_token`` of today."""

    client_id: str | None = None
    # SECURITYBOT_SLACK__OAUTH__CLIENT_SECRET(_FILE), or client_secret_file in the YAML.
    client_secret: SecretStr | None = None
    client_secret_file: str | None = None
    # The bot scopes asked for; empty: slack-manifest.yaml's bot list (slack/tokens.py).
    scopes: list[str] = Field(default_factory=list)
    # User scopes asked of the admin who installs (a user token, kept with the installation).
    # ["admin.users:write"]: session resets in workspaces of another Enterprise Grid org whose
    # org admin installs and grants it (admin.users.session.reset is Grid only); empty: none.
    user_scopes: list[str] = Field(default_factory=list)
    # Where Slack sends the admin back: https://<host>/slack/oauth_redirect, as listed in the
    # app's "OAuth & Permissions" → Redirect URLs.
    redirect_url: str | None = None
    # Slack's own authorize page; a test points it at a fake.
    authorize_url: str = "https://slack.com/oauth/v2/authorize"
    # With token rotation on (the manifest's token_rotation_enabled), a bot token is refreshed
    # this long before it expires (Slack's tokens last 12 hours).
    refresh_before: Duration = 7200.0

    @field_validator("redirect_url", "authorize_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return v

    @model_validator(mode="before")
    @classmethod
    def _client_secret_file(cls, data: Any) -> Any:
        return _secret_from_file(data, "client_secret")

    @property
    def configured(self) -> bool:
        return bool(self.client_id and self.client_secret and self.redirect_url)


def _secret_from_file(data: Any, key: str) -> Any:
    """``<key>_file``: read ``key`` from a file (a mounted secret) when ``key`` is unset."""
    name = f"{key}_file"
    if not isinstance(data, dict) or data.get(key) or not data.get(name):
        return data
    path = str(data[name])
    try:
        text = Path(path).read_text().strip()
    except OSError as exc:
        raise ValueError(f"{name}: cannot read {path!r}: {exc.strerror}") from None
    return {**data, key: text or None}


class SlackConfig(_Section):
    bot_token: SecretStr | None = None
    signing_secret: SecretStr | None = None
    app_token: SecretStr | None = None
    admin_token: SecretStr | None = None
    # A file holding admin_token (a mounted secret), read at load when admin_token is unset.
    admin_token_file: str | None = None
    api_url: str = "https://slack.com/api/"
    security_channel: str | None = None
    # Workspaces (T…) and Enterprise Grid orgs (E…) whose requests are served, besides the one
    # auth.test names for bot_token; requests from any other are refused (403, audited).
    team_ids: list[Annotated[str, Field(pattern=r"^T[A-Z0-9]+$")]] = Field(default_factory=list)
    enterprise_ids: list[Annotated[str, Field(pattern=r"^E[A-Z0-9]+$")]] = Field(
        default_factory=list
    )
    user_cache_ttl: Duration = 3600.0
    # Calls a minute per Web API method, for a workspace Slack granted more than its documented
    # tier (the floor used otherwise); "chat.postMessage" is the workspace-wide post ceiling.
    rate_limits: dict[
        Annotated[str, Field(pattern=r"^[a-z]+(\.[A-Za-z]+)+$")], Annotated[float, Field(gt=0)]
    ] = Field(default_factory=dict)
    # Slack's biggest deliveries are view submissions: up to 100 blocks of 3,000 characters
    # plus their input values (docs.slack.dev "Block Kit" limits), form-encoded. 1 MiB holds
    # them with room to spare; anything bigger is not from Slack.
    max_body_bytes: int = Field(default=1024 * 1024, ge=64 * 1024, le=16 * 1024 * 1024)

    oauth: SlackOAuthConfig = Field(default_factory=SlackOAuthConfig)

    @field_validator("api_url")
    @classmethod
    def _slash(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return v if v.endswith("/") else v + "/"

    @model_validator(mode="before")
    @classmethod
    def _admin_token_file(cls, data: Any) -> Any:
        """``admin_token_file``: read the admin token from a file when ``admin_token`` is unset."""
        return _secret_from_file(data, "admin_token")

    @property
    def configured(self) -> bool:
        return bool(self.bot_token and self.signing_secret)
