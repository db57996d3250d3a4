"""Paging the on-call responder through PagerDuty or Opsgenie (docs/paging.md)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from securitybot.config.base import Duration, Severity, _Section, http_url


class PagerDutyConfig(_Section):
    """PagerDuty's Events API v2 (the page) and, optionally, its v3 webhooks (back from it)."""

    # The 32-character Integration Key of an "Events API V2" integration on a service.
    routing_key: SecretStr | None = None
    # https://events.eu.pagerduty.com for PagerDuty's EU service region.
    base_url: str = "https://events.pagerduty.com"
    # The REST API, to read who acknowledged (their email, to find them in Slack):
    # https://api.eu.pagerduty.com in the EU region. A read-only API key is enough.
    api_url: str = "https://api.pagerduty.com"
    api_token: SecretStr | None = None
    # The secret of a v3 webhook subscription pointed at /pagerduty/webhook.
    webhook_secret: SecretStr | None = None
    # PagerDuty retries a webhook for up to 48 hours; older events are refused.
    webhook_replay_window: Duration = 48 * 3600.0

    @field_validator("base_url", "api_url")
    @classmethod
    def _url(cls, v: str) -> str:
        return http_url(v)

    @field_validator("routing_key")
    @classmethod
    def _key(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and len(v.get_secret_value()) != 32:
            raise ValueError("must be the integration's 32 characters")
        return v

    @property
    def enabled(self) -> bool:
        return self.routing_key is not None


class OpsgenieResponder(_Section):
    """Who an Opsgenie alert is routed to, as Opsgenie's Alert API takes it."""

    type: Literal["team", "user", "escalation", "schedule"]
    id: str | None = None
    name: str | None = None
    username: str | None = None

    @model_validator(mode="after")
    def _named(self) -> OpsgenieResponder:
        if not (self.id or self.name or self.username):
            raise ValueError("a responder needs an id, a name or (users) a username")
        return self


class OpsgenieConfig(_Section):
    """Opsgenie's Alert API, with the key of an API integration."""

    api_key: SecretStr | None = None
    # https://api.eu.opsgenie.com for Opsgenie's EU instance.
    base_url: str = "https://api.opsgenie.com"
    responders: list[OpsgenieResponder] = Field(default_factory=list, max_length=50)
    tags: list[Annotated[str, Field(min_length=1, max_length=50)]] = Field(
        default_factory=list, max_length=16
    )

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        return http_url(v)

    @property
    def enabled(self) -> bool:
        return self.api_key is not None


class PagingConfig(_Section):
    """Paging the on-call responder (docs/paging.md): whom, when, and through which pager."""

    # An escalation of one of these severities pages (a kind's `page: always|never` wins).
    severities: list[Severity] = Field(default=["high", "critical"])
    # always: at escalation; unclaimed_after_claim_timeout: if nobody claimed it within
    # escalation.claim_timeout; outside_business_hours: at escalation outside
    # policy.business_hours (in its default_tz), never during them.
    when: Literal["always", "unclaimed_after_claim_timeout", "outside_business_hours"] = "always"
    # The dashboard's public URL, for a link from the pager to the alert.
    dashboard_url: str | None = None
    pagerduty: PagerDutyConfig = PagerDutyConfig()
    opsgenie: OpsgenieConfig = OpsgenieConfig()

    @field_validator("dashboard_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        return None if v is None else http_url(v)

    @property
    def enabled(self) -> bool:
        return self.pagerduty.enabled or self.opsgenie.enabled
