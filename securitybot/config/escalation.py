"""Escalations to the security channel, and the outbound webhooks that follow them."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from securitybot.config.base import SLACK_REF, ClockTime, Duration, _Section


class EscalationTier(_Section):
    mention: str = Field(description="Slack user group (S…) or user (U…) id, or 'here'/'channel'")

    @field_validator("mention")
    @classmethod
    def _ref(cls, v: str) -> str:
        if v in ("here", "channel") or re.match(SLACK_REF, v):
            return v
        raise ValueError("must be a Slack user group id (S…), a user id (U…), 'here' or 'channel'")


def _responder_ids(v: list[str]) -> list[str]:
    for item in v:
        if not re.match(SLACK_REF, item):
            raise ValueError(f"{item!r} is not a Slack user (U…) or user group (S…) id")
    return v


class EscalationRoute(_Section):
    """Alerts about someone in this workspace (``team_id``) or Enterprise Grid org
    (``enterprise_id``) escalate to ``channel`` instead of ``slack.security_channel``; its
    ``responders`` may triage them besides ``escalation.responders``."""

    team_id: str | None = Field(default=None, pattern=r"^T[A-Z0-9]+$")
    enterprise_id: str | None = Field(default=None, pattern=r"^E[A-Z0-9]+$")
    channel: str = Field(pattern=r"^[CG][A-Z0-9]+$")
    responders: list[str] = Field(default_factory=list)

    _ids = field_validator("responders")(_responder_ids)

    @model_validator(mode="after")
    def _one_key(self) -> EscalationRoute:
        if (self.team_id is None) == (self.enterprise_id is None):
            raise ValueError("give exactly one of team_id (T…) or enterprise_id (E…)")
        return self


class EscalationConfig(_Section):
    # Who may triage from the channel: Slack user ids (U…) and/or user group ids (S…).
    responders: list[str] = Field(default_factory=list)
    # By the person's workspace or org: another channel (and more responders). First match of
    # the person's workspaces wins, then their org; no match: slack.security_channel.
    routes: list[EscalationRoute] = Field(default_factory=list)
    mention: str | None = None  # user group mentioned on severe escalations, e.g. S0ONCALL
    mention_severities: list[Literal["low", "medium", "high", "critical"]] = Field(
        default=["high", "critical"]
    )
    claim_timeout: Duration = 900.0
    tiers: list[EscalationTier] = Field(default_factory=list)
    # Our own JSON, POSTed when Slack keeps failing; not a PagerDuty or Opsgenie integration
    # (that is `paging`).
    fallback_webhook: str | None = None
    fallback_after_failures: int = Field(default=3, ge=1, le=100)
    group_window: Duration = 300.0
    # Longest exemption a responder may grant with `/securitybot exempt` (Slack has no expiry-free
    # path: an exemption someone forgets about is a blind spot).
    max_exemption: Duration = 30 * 86400.0
    # Longest suppression rule (maintenance window) a responder may make; every rule expires.
    max_suppression: Duration = 7 * 86400.0
    # When (UTC, HH:MM) the day's suppressed alerts are listed in the security channel.
    suppression_summary_at: ClockTime = "09:00"

    _ids = field_validator("responders")(_responder_ids)

    @field_validator("fallback_webhook")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return v


class OutboundWebhook(_Section):
    url: str
    events: list[Literal["resolved", "escalated", "claimed", "closed", "sessions_reset"]] = Field(
        default=["resolved", "escalated", "claimed", "closed", "sessions_reset"], min_length=1
    )
    secret: SecretStr | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return v


class WebhooksConfig(_Section):
    outbound: list[OutboundWebhook] = Field(default_factory=list)
