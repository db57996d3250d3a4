"""Slack: the bot's credentials, the security channel and the workspaces served."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator

from securitybot.config.base import Duration, _Section


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
        if (
            not isinstance(data, dict)
            or data.get("admin_token")
            or not data.get("admin_token_file")
        ):
            return data
        path = str(data["admin_token_file"])
        try:
            text = Path(path).read_text().strip()
        except OSError as exc:
            raise ValueError(f"admin_token_file: cannot read {path!r}: {exc.strerror}") from None
        return {**data, "admin_token": text or None}

    @property
    def configured(self) -> bool:
        return bool(self.bot_token and self.signing_secret)
