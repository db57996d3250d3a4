"""The whole configuration, one field per section, and how pydantic-settings fills it."""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from securitybot.config.aer import AerConfig
from securitybot.config.dashboard import DashboardConfig
from securitybot.config.escalation import EscalationConfig, WebhooksConfig
from securitybot.config.i18n import I18nConfig
from securitybot.config.ingest import AdapterConfig, IngestConfig
from securitybot.config.paging import PagingConfig
from securitybot.config.policy import PolicyConfig
from securitybot.config.retention import RetentionConfig
from securitybot.config.service import (
    AlertsConfig,
    DatabaseConfig,
    LoggingConfig,
    SchedulerConfig,
    ServerConfig,
)
from securitybot.config.slack import SlackConfig
from securitybot.config.sources import (
    ENV_DELIMITER,
    ENV_PREFIX,
    LOADING,
    ConfigFileSource,
    SecretFileEnvSource,
    SectionEnvSource,
)
from securitybot.config.storms import StormConfig
from securitybot.config.verify import DuoConfig, OktaConfig, VerifyConfig
from securitybot.ingest.adapters.names import ADAPTER_NAMES
from securitybot.masking import mask_config_tree


class Settings(BaseSettings):
    """The whole configuration. ``load_config`` fills it from config.yaml and the environment;
    built directly (tests, the demo) it takes only what it is given."""

    model_config = SettingsConfigDict(
        extra="forbid",
        frozen=True,
        validate_default=False,
        case_sensitive=False,
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_DELIMITER,
    )

    database: DatabaseConfig = DatabaseConfig()
    server: ServerConfig = ServerConfig()
    slack: SlackConfig = SlackConfig()
    duo: DuoConfig = DuoConfig()
    verify: VerifyConfig = VerifyConfig()
    okta: OktaConfig = OktaConfig()
    ingest: IngestConfig = IngestConfig()
    policy: PolicyConfig = PolicyConfig()
    escalation: EscalationConfig = EscalationConfig()
    paging: PagingConfig = PagingConfig()
    webhooks: WebhooksConfig = WebhooksConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    alerts: AlertsConfig = AlertsConfig()
    retention: RetentionConfig = RetentionConfig()
    adapters: dict[str, AdapterConfig] = Field(default_factory=dict)
    logging: LoggingConfig = LoggingConfig()

    @field_validator("adapters")
    @classmethod
    def _known_adapters(
        cls, v: dict[str, AdapterConfig], info: ValidationInfo
    ) -> dict[str, AdapterConfig]:
        ingest = info.data.get("ingest")
        sources = {t.source for t in ingest.tokens} if ingest else set()
        for name, adapter in v.items():
            if name not in ADAPTER_NAMES:
                raise ValueError(f"unknown adapter {name!r} (known: {', '.join(ADAPTER_NAMES)})")
            for source in adapter.sources:
                if source not in sources:
                    raise ValueError(f"{name}.sources: {source!r} is not a source in ingest.tokens")
        return v

    dashboard: DashboardConfig = DashboardConfig()
    aer: AerConfig = AerConfig()
    storm: StormConfig = StormConfig()
    i18n: I18nConfig = I18nConfig()

    @model_validator(mode="after")
    def _paging_calendar(self) -> Settings:
        if self.paging.when == "outside_business_hours" and self.policy.business_hours is None:
            raise ValueError(
                "paging.when outside_business_hours needs policy.business_hours (the calendar)"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        context = LOADING.get()
        if context is None:
            return (init_settings,)
        # Highest first: a variable beats the file; a key and its _FILE together are refused.
        return (
            init_settings,
            SectionEnvSource(settings_cls, context),
            SecretFileEnvSource(settings_cls, context),
            ConfigFileSource(settings_cls, context),
        )

    def masked(self) -> dict[str, Any]:
        """The effective configuration as plain data, every secret shown as ``**********``."""
        data: dict[str, Any] = mask_config_tree(self.model_dump(mode="json", by_alias=True))
        return data

    def unconfigured(self) -> list[str]:
        """Human-readable notes on what is not set up yet (reported at start, not as tracebacks)."""
        notes = []
        if not self.slack.configured:
            notes.append("Slack (slack.bot_token, slack.signing_secret): alerts are stored, no DMs")
        if self.verify.provider == "okta" and not self.okta.configured:
            missing = ", ".join(f"okta.{k}" for k in self.okta.missing)
            notes.append(f"Okta (verify.provider is okta; {missing} unset): 'it was me' escalates")
        elif self.verify.provider == "duo" and not self.duo.configured:
            notes.append("Duo (duo.ikey, duo.skey, duo.api_host): 'it was me' escalates")
        pd = self.paging.pagerduty
        if pd.webhook_secret is not None and pd.api_token is None:
            notes.append(
                "paging.pagerduty.api_token: acknowledgements in PagerDuty are shown but claim "
                "nothing (their user's email cannot be read)"
            )
        if self.slack.configured and not self.slack.security_channel:
            notes.append(
                "slack.security_channel: escalations have nowhere to go (their posts fail "
                "and become dead outbox rows)"
            )
        if self.slack.configured and not self.escalation.responders:
            notes.append(
                "escalation.responders: nobody may claim or close escalations, or manage "
                "exemptions and snoozes, from Slack"
            )
        if not self.ingest.tokens:
            notes.append("ingest.tokens: nobody can post alerts")
        elif not any("admin" in t.scopes for t in self.ingest.tokens):
            notes.append(
                "ingest.tokens[].scopes: no 'admin' credential: exemptions and snoozes are "
                "managed only with /securitybot in Slack"
            )
        if self.aer.enabled and not any("events" in t.scopes for t in self.ingest.tokens):
            notes.append(
                "ingest.tokens[].scopes: no 'events' credential: POST /api/v1/events refuses "
                "every caller ('ingest' tokens no longer post events; docs/upgrades.md)"
            )
        return notes
