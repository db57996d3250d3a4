"""Typed configuration: config.yaml + ${ENV} substitution + SECURITYBOT_<SECTION>__<KEY> overrides.

Everything the service reads from its configuration goes through :func:`load_config`, so a typo
or a bad value stops the program at start-up with one line naming the key, instead of failing
later in the middle of an alert. One module per section; this package re-exports every name, so
``from securitybot.config import X`` is all callers need.
"""

from __future__ import annotations

from securitybot.config.aer import (
    AerAuditLogs,
    AerConfig,
    AerContacts,
    AerResetBudget,
    AerStream,
    AerStreamTls,
)
from securitybot.config.base import (
    SLACK_REF,
    ClockTime,
    ConfigError,
    Duration,
    DurationOrOff,
    Severity,
    _Section,
    parse_duration,
)
from securitybot.config.dashboard import (
    OIDC_CALLBACK_PATH,
    DashboardConfig,
    DashboardOidc,
    DashboardRole,
    DashboardRoles,
    DashboardUser,
)
from securitybot.config.escalation import (
    EscalationConfig,
    EscalationRoute,
    EscalationTier,
    OutboundWebhook,
    WebhooksConfig,
)
from securitybot.config.i18n import I18nConfig
from securitybot.config.ingest import (
    ALL_ORGS,
    AdapterConfig,
    AdapterTemplates,
    IngestConfig,
    IngestToken,
    RateLimit,
    Scope,
)
from securitybot.config.loading import DEFAULT_CONFIG_PATH, find_config_path, load_config
from securitybot.config.paging import (
    OpsgenieConfig,
    OpsgenieResponder,
    PagerDutyConfig,
    PagingConfig,
)
from securitybot.config.policy import BusinessHoursConfig, PolicyConfig
from securitybot.config.retention import RetentionConfig, RetentionHold
from securitybot.config.service import (
    AlertsConfig,
    DatabaseConfig,
    LoggingConfig,
    SchedulerConfig,
    ServerConfig,
)
from securitybot.config.settings import Settings
from securitybot.config.slack import SlackConfig
from securitybot.config.sources import ENV_PREFIX, _substitute
from securitybot.config.storms import StormConfig, StormLimit
from securitybot.config.verify import DuoConfig, OktaConfig, VerifyConfig

# Re-exported: check-config and older callers import them from here.
from securitybot.masking import MASK, mask_config_tree, mask_secrets_in

__all__ = [
    "ALL_ORGS",
    "DEFAULT_CONFIG_PATH",
    "ENV_PREFIX",
    "MASK",
    "OIDC_CALLBACK_PATH",
    "SLACK_REF",
    "AdapterConfig",
    "AdapterTemplates",
    "AerAuditLogs",
    "AerConfig",
    "AerContacts",
    "AerResetBudget",
    "AerStream",
    "AerStreamTls",
    "AlertsConfig",
    "BusinessHoursConfig",
    "ClockTime",
    "ConfigError",
    "DashboardConfig",
    "DashboardOidc",
    "DashboardRole",
    "DashboardRoles",
    "DashboardUser",
    "DatabaseConfig",
    "DuoConfig",
    "Duration",
    "DurationOrOff",
    "EscalationConfig",
    "EscalationRoute",
    "EscalationTier",
    "I18nConfig",
    "IngestConfig",
    "IngestToken",
    "LoggingConfig",
    "OktaConfig",
    "OpsgenieConfig",
    "OpsgenieResponder",
    "OutboundWebhook",
    "PagerDutyConfig",
    "PagingConfig",
    "PolicyConfig",
    "RateLimit",
    "RetentionConfig",
    "RetentionHold",
    "SchedulerConfig",
    "Scope",
    "ServerConfig",
    "Settings",
    "Severity",
    "SlackConfig",
    "StormConfig",
    "StormLimit",
    "VerifyConfig",
    "WebhooksConfig",
    "_Section",
    "_substitute",
    "find_config_path",
    "load_config",
    "mask_config_tree",
    "mask_secrets_in",
    "parse_duration",
]
