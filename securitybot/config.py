"""Typed configuration: config.yaml + ${ENV} substitution + SECURITYBOT_<SECTION>__<KEY> overrides.

Everything the service reads from its configuration goes through :func:`load_config`, so a typo
or a bad value stops the program at start-up with one line naming the key, instead of failing
later in the middle of an alert.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from sqlalchemy.engine import make_url

# Re-exported: parse_duration was defined here first.
from securitybot.durations import parse_duration as parse_duration
from securitybot.ingest.adapters.names import ADAPTER_NAMES

# Re-exported: check-config and older callers import them from here.
from securitybot.masking import MASK as MASK
from securitybot.masking import mask_config_tree
from securitybot.masking import mask_secrets_in as mask_secrets_in
from securitybot.shipped import ALERTS_DIR

ENV_PREFIX = "SECURITYBOT_"
DEFAULT_CONFIG_PATH = "config.yaml"

_ENV_REF_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(Exception):
    """A configuration problem, phrased as one line that names the key."""


def _duration_or_off(value: Any) -> float:
    return parse_duration(value, zero_is_off=True)


Duration = Annotated[float, BeforeValidator(parse_duration)]
# An interval where 0 means "off" (documented so beside each such key).
DurationOrOff = Annotated[float, BeforeValidator(_duration_or_off)]


class _Section(BaseModel):
    # Unknown keys are almost always typos ("ack_timout"); refusing them is kinder than ignoring.
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_is_unset(cls, data: Any) -> Any:
        # "${SLACK_BOT_TOKEN:-}" yields "", which means "not configured", not "an empty token".
        if isinstance(data, dict):
            return {
                k: v
                for k, v in data.items()
                if not (v == "" and k in cls.model_fields and cls.model_fields[k].default is None)
            }
        return data


class DatabaseConfig(_Section):
    url: str = "sqlite:///securitybot.db"
    # Connections kept open: as many as the threads that use them (32 handler threads, the
    # outbox's 4 and ingest's writers), so the hot path never opens one per transaction.
    pool_size: int = Field(default=40, ge=1, le=200)
    echo: bool = False

    @field_validator("url")
    @classmethod
    def _parsable(cls, v: str) -> str:
        try:
            make_url(v)
        except Exception:
            # Never echo the URL: it holds the password.
            raise ValueError(
                "not a URL SQLAlchemy can read (libpq's multi-host form h1:5432,h2:5432 is "
                "written ?host=h1:5432&host=h2:5432; percent-encode odd characters)"
            ) from None
        return v


class ServerConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    # SIGTERM to exit: open HTTP requests get a quarter of it, outbox jobs in flight half, and
    # what is left closes connections. Kubernetes' terminationGracePeriodSeconds must be longer.
    shutdown_grace: Duration = Field(default=20.0, le=600)


class SlackConfig(_Section):
    bot_token: SecretStr | None = None
    signing_secret: SecretStr | None = None
    app_token: SecretStr | None = None
    admin_token: SecretStr | None = None
    api_url: str = "https://slack.com/api/"
    security_channel: str | None = None
    # Workspaces (T…) and Enterprise Grid orgs (E…) whose requests are served, besides the one
    # auth.test names for bot_token; requests from any other are refused (403, audited).
    team_ids: list[Annotated[str, Field(pattern=r"^T[A-Z0-9]+$")]] = Field(default_factory=list)
    enterprise_ids: list[Annotated[str, Field(pattern=r"^E[A-Z0-9]+$")]] = Field(
        default_factory=list
    )
    user_cache_ttl: Duration = 3600.0
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

    @property
    def configured(self) -> bool:
        return bool(self.bot_token and self.signing_secret)


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


Scope = Literal["ingest", "admin", "events"]
# ``ingest.tokens[].orgs`` entry that lets an events source speak for every org.
ALL_ORGS = "*"


class IngestToken(_Section):
    source: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    token: SecretStr | None = None
    hmac_secret: SecretStr | None = None
    # What the credential may do: "ingest" posts alerts and reads them; "admin" manages
    # exemptions and snoozes. A leaked monitoring token must not be able to silence anyone.
    # "events" posts AER activity events (POST /api/v1/events), which can sign people out.
    scopes: list[Scope] = Field(default=["ingest"], min_length=1)
    # The orgs an "events" credential may post events for ("*": every org); required with it.
    orgs: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = None

    @model_validator(mode="after")
    def _one_credential(self) -> IngestToken:
        if not self.token and not self.hmac_secret:
            raise ValueError(f"source {self.source!r} needs a 'token' or an 'hmac_secret'")
        for name, secret in (("token", self.token), ("hmac_secret", self.hmac_secret)):
            if secret is not None and len(secret.get_secret_value()) < 16:
                raise ValueError(f"source {self.source!r}: {name} must be at least 16 characters")
        if "events" in self.scopes and not self.orgs:
            raise ValueError(
                f"source {self.source!r} has the 'events' scope but no 'orgs': list the org ids "
                f"it may post events for (or [{ALL_ORGS!r}] for every org)"
            )
        if self.orgs and "events" not in self.scopes:
            raise ValueError(
                f"source {self.source!r}: 'orgs' binds the 'events' scope, which it lacks"
            )
        if self.orgs and ALL_ORGS in self.orgs and len(self.orgs) > 1:
            raise ValueError(f"source {self.source!r}: orgs is either [{ALL_ORGS!r}] or org ids")
        return self


class RateLimit(_Section):
    # Token bucket per source: `rate` requests per second on average, bursts up to `burst`.
    rate: float = Field(default=50.0, gt=0, le=1_000_000)
    burst: int = Field(default=200, ge=1, le=1_000_000)


class IngestConfig(_Section):
    tokens: list[IngestToken] = Field(default_factory=list)
    replay_window: Duration = 300.0
    rate_limit: RateLimit = RateLimit()
    rate_limits: dict[str, RateLimit] = Field(default_factory=dict)

    @field_validator("rate_limits")
    @classmethod
    def _limits_name_sources(
        cls, v: dict[str, RateLimit], info: ValidationInfo
    ) -> dict[str, RateLimit]:
        known = {t.source for t in info.data.get("tokens", [])}
        for source in v:
            if source not in known:
                raise ValueError(f"{source!r} is not a source in ingest.tokens")
        return v

    def event_orgs(self, source: str) -> frozenset[str]:
        """The orgs ``source`` may post events for (``{"*"}``: any); empty: none."""
        for t in self.tokens:
            if t.source == source and t.orgs:
                return frozenset(t.orgs)
        return frozenset()

    @field_validator("tokens")
    @classmethod
    def _unique(cls, v: list[IngestToken]) -> list[IngestToken]:
        orgs: dict[str, frozenset[str]] = {}
        for t in v:
            if t.orgs is None:
                continue
            if orgs.setdefault(t.source, frozenset(t.orgs)) != frozenset(t.orgs):
                raise ValueError(
                    f"source {t.source!r} is listed twice with different orgs: an events "
                    "source is bound to one set of orgs, whichever credential it uses"
                )
        seen: set[str] = set()
        for t in v:
            for secret in (t.token, t.hmac_secret):
                if secret is None:
                    continue
                value = secret.get_secret_value()
                if value in seen:
                    raise ValueError("the same token or secret is used twice")
                seen.add(value)
        return v


_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _clock_time(value: Any) -> Any:
    # YAML 1.1 reads an unquoted 10:00 as the base-60 number 600 (PyYAML does).
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        raise ValueError(
            f"YAML read an unquoted time as the number {value}: quote it, as in "
            f'"{value // 60:02d}:{value % 60:02d}"'
        )
    return value


# A time of day, HH:MM (24 h).
ClockTime = Annotated[
    str, BeforeValidator(_clock_time), Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
]


class BusinessHoursConfig(_Section):
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(
        default=["mon", "tue", "wed", "thu", "fri"], min_length=1
    )
    start: ClockTime = "09:00"
    end: ClockTime = "18:00"
    default_tz: str = "UTC"

    @model_validator(mode="after")
    def _order(self) -> BusinessHoursConfig:
        if self.start >= self.end:
            raise ValueError("start must be before end")
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(self.default_tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"default_tz {self.default_tz!r} is not a time zone") from None
        return self

    @property
    def weekdays(self) -> frozenset[int]:
        return frozenset(_DAYS.index(d) for d in self.days)


class PolicyConfig(_Section):
    ack_timeout: Duration = 600.0
    duo_timeout: Duration = 120.0
    # Count the answer deadline in business hours, in the user's own time zone (from Slack).
    business_hours: BusinessHoursConfig | None = None
    # One reminder DM halfway to the deadline.
    reminder: bool = True


_SLACK_REF = r"^(U|W|S)[A-Z0-9]{2,30}$"


class EscalationTier(_Section):
    mention: str = Field(description="Slack user group (S…) or user (U…) id, or 'here'/'channel'")

    @field_validator("mention")
    @classmethod
    def _ref(cls, v: str) -> str:
        if v in ("here", "channel") or re.match(_SLACK_REF, v):
            return v
        raise ValueError("must be a Slack user group id (S…), a user id (U…), 'here' or 'channel'")


class EscalationConfig(_Section):
    # Who may triage from the channel: Slack user ids (U…) and/or user group ids (S…).
    responders: list[str] = Field(default_factory=list)
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

    @field_validator("responders")
    @classmethod
    def _ids(cls, v: list[str]) -> list[str]:
        for item in v:
            if not re.match(_SLACK_REF, item):
                raise ValueError(f"{item!r} is not a Slack user (U…) or user group (S…) id")
        return v

    @field_validator("fallback_webhook")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return v


Severity = Literal["low", "medium", "high", "critical"]


def _http_url(v: str) -> str:
    if not v.startswith(("http://", "https://")):
        raise ValueError("must be an http(s) URL")
    return v.rstrip("/")


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
        return _http_url(v)

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
        return _http_url(v)

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
        return None if v is None else _http_url(v)

    @property
    def enabled(self) -> bool:
        return self.pagerduty.enabled or self.opsgenie.enabled


class SchedulerConfig(_Section):
    sweep_interval: Duration = 1.0
    # How long a replica holds an outbox job it is working on before others may retry it;
    # renewed every third of it while the job runs, so this is only the time survivors wait
    # to pick up the work of a process that died.
    outbox_lease: Duration = 10.0
    enabled: bool = True


class RetentionHold(_Section):
    """A legal hold: what it names is never purged, whatever its age (``retention.hold``)."""

    alerts: list[int] = Field(default_factory=list)  # alert ids
    people: list[str] = Field(default_factory=list)  # emails or Slack user ids
    kinds: list[str] = Field(default_factory=list)  # alert kinds

    @field_validator("people")
    @classmethod
    def _lower(cls, v: list[str]) -> list[str]:
        return [p.strip().lower() if "@" in p else p.strip() for p in v if p.strip()]


class RetentionConfig(_Section):
    """How long each category is kept before the daily purge deletes it; ``0`` or unset keeps it
    forever (so an upgrade never deletes anything the operator did not ask for). The shipped
    config.yaml sets the defaults docs/privacy.md recommends."""

    alerts: DurationOrOff = 0.0  # finished alerts, their outbox rows, AER anomalies + decisions
    audit: DurationOrOff = 0.0  # the audit log
    outbox: DurationOrOff = 0.0  # done (and dead) outbox jobs
    aer: DurationOrOff = 0.0  # AER per-user counters, profiles, sessions, user state
    hold: RetentionHold = RetentionHold()
    # Rows per delete transaction: small, so ingest and DMs never wait long on the purge.
    batch_size: int = Field(default=500, ge=1, le=10_000)
    # The share of the time the purge may work: after a batch that took t it pauses
    # t * (1 - share) / share (and at least `pause`), so SQLite's single writer, PostgreSQL and
    # the CPU stay with ingest and DMs the rest of the time, however slow the machine is.
    share: float = Field(default=0.25, gt=0, le=1)
    pause: DurationOrOff = 0.02
    # When the daily purge runs (UTC, HH:MM); one replica at a time holds its lease.
    run_at: str = "03:30"

    @field_validator("alerts", "audit", "outbox", "aer", mode="before")
    @classmethod
    def _unset_keeps(cls, v: Any) -> Any:
        return 0 if v is None else v

    @field_validator("run_at")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        from securitybot.domain.business_hours import parse_hhmm

        parse_hhmm(v)
        return v

    @property
    def enabled(self) -> bool:
        return any((self.alerts, self.audit, self.outbox, self.aer))


class AlertsConfig(_Section):
    dir: str = str(ALERTS_DIR)


class AdapterTemplates(_Section):
    """Templates (sandboxed Jinja2) that map a tool's item onto alert fields; unset: built-in."""

    user: str | None = None
    kind: str | None = None
    title: str | None = None
    description: str | None = None
    dedup_key: str | None = None
    occurred_at: str | None = None

    @field_validator("user", "kind", "title", "description", "dedup_key", "occurred_at")
    @classmethod
    def _compiles(cls, v: str | None) -> str | None:
        if v is None:
            return v
        from securitybot.ingest.adapters.templates import TemplateProblem, compile_template

        try:
            compile_template(v)
        except TemplateProblem as exc:
            raise ValueError(f"template does not compile: {exc}") from None
        return v


class AdapterConfig(AdapterTemplates):
    # Per-source overrides: the same tool fed by two teams may name the user differently.
    sources: dict[str, AdapterTemplates] = Field(default_factory=dict)


class LoggingConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_format: bool = Field(default=False, alias="json")
    # uvicorn's request lines (off: their query strings can name people, e.g. ?user=alice@...).
    access_log: bool = False

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


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


class AerAuditLogs(_Section):
    """Slack's Audit Logs API (Enterprise Grid org token): Slack's own ``anomaly`` entries."""

    token: SecretStr | None = None
    api_url: str = "https://api.slack.com/audit/v1/"
    poll_interval: Duration = 60.0
    # Tier 3: about 50 calls a minute; the poller spaces its calls to stay under this.
    max_calls_per_minute: int = Field(default=50, ge=1, le=6000)
    page_size: int = Field(default=200, ge=1, le=9999)


class AerContacts(_Section):
    """Who "primary owner" and "security admins" are for an org's AER notifications."""

    primary_owner: str | None = Field(default=None, pattern=r"^[UW][A-Z0-9]{2,30}$")
    security_admins: list[Annotated[str, Field(pattern=r"^[UW][A-Z0-9]{2,30}$")]] = Field(
        default_factory=list
    )


class AerStreamTls(_Section):
    """TLS to NATS: the CA that signed the server's certificate, and a client certificate."""

    ca: str | None = None  # PEM file; unset: the system's CAs (when the server asks for TLS)
    cert: str | None = None  # PEM client certificate, for a server with `verify: true`
    key: str | None = None  # its private key

    @model_validator(mode="after")
    def _pair(self) -> AerStreamTls:
        if (self.cert is None) != (self.key is None):
            raise ValueError("cert and key go together")
        for name in ("ca", "cert", "key"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise ValueError(f"{name}: {path} is not a readable file")
        return self

    @property
    def configured(self) -> bool:
        return self.ca is not None or self.cert is not None


class AerStream(_Section):
    """NATS JetStream between ``POST /api/v1/events`` and ``securitybot aer worker``."""

    url: str = "nats://127.0.0.1:4222"
    stream: str = Field(default="AER", pattern=r"^[A-Za-z0-9_-]{1,32}$")
    # Messages go to ``<subject>.<partition>``, partition = crc32(org) mod ``partitions``.
    subject: str = Field(default="aer.events", pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
    partitions: int = Field(default=8, ge=1, le=1024)
    # A dead worker's partitions are taken over once its lease expires.
    lease: Duration = 5.0
    batch: int = Field(default=1000, ge=1, le=10_000)
    publish_timeout: Duration = 5.0
    # JetStream drops a message whose Nats-Msg-Id it stored within this window, so a sender
    # retrying a batch (after a 503, a timeout) within it never counts an event twice: make it
    # longer than your senders' retry horizon. Applied to the stream at every start; ids are
    # kept in NATS's memory for the window. Messages signed longer ago than this are refused
    # by workers (a replay of a captured message).
    duplicate_window: Duration = 600.0
    # NATS credentials (at most one kind): user + password, token, an NKey user seed (SU...),
    # or the contents of a .creds file (user JWT + seed, as `nsc` writes it). Each has a
    # SECURITYBOT_AER__STREAM__<KEY>_FILE form. Without any, `serve` and workers warn.
    user: str | None = None
    password: SecretStr | None = None
    token: SecretStr | None = None
    nkey_seed: SecretStr | None = None
    creds: SecretStr | None = None
    tls: AerStreamTls = AerStreamTls()
    # The API signs every message (HMAC-SHA256); workers act only on messages signed with
    # signing_key or signing_key_previous (rotation: sign with the new key everywhere after
    # every worker accepts it). Same value in `serve` and every worker.
    signing_key: SecretStr | None = None
    signing_key_previous: SecretStr | None = None
    # Messages a worker cannot use go here (core NATS, <dead_letter_subject>.<partition>) and
    # to the aer_dead_letters table; default: <subject>-dead.
    dead_letter_subject: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"
    )

    @model_validator(mode="after")
    def _credentials(self) -> AerStream:
        if self.signing_key is None:
            raise ValueError(
                "signing_key is required: workers act only on messages the API signed (a "
                "random secret of 32+ characters, e.g. `openssl rand -hex 32`, the same for "
                "serve and every worker; see docs/scaling.md)"
            )
        for name in ("signing_key", "signing_key_previous"):
            key: SecretStr | None = getattr(self, name)
            if key is not None and len(key.get_secret_value().encode()) < 32:
                raise ValueError(f"{name} must be at least 32 characters")
        kinds = [k for k in ("user", "token", "nkey_seed", "creds") if getattr(self, k)]
        if len(kinds) > 1:
            raise ValueError(f"use one kind of NATS credentials, not {' and '.join(kinds)}")
        if (self.password is None) != (self.user is None):
            raise ValueError("user and password go together")
        return self

    @property
    def dead_letters(self) -> str:
        return self.dead_letter_subject or f"{self.subject}-dead"


class AerResetBudget(_Section):
    """Automatic session resets per org: at most ``count`` in any ``per`` (a sliding window,
    counted in the database, so it holds across replicas and workers). Past it, resets are
    held for a responder to release or discard; ``count: 0`` holds every one."""

    count: int = Field(default=10, ge=0, le=10_000)
    per: Duration = Field(default=3600.0, le=30 * 86400.0)


class AerConfig(_Section):
    """Anomaly Event Response; ``orgs.<org>`` and ``defaults`` are checked by aer.decide."""

    enabled: bool = False
    rules_path: str = str(ALERTS_DIR / "aer_rules.yaml")
    tor_list: str | None = str(ALERTS_DIR / "tor_exit_nodes.txt")
    defaults: dict[str, Any] = Field(default_factory=dict)
    orgs: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # Per org, or "*" for every org without its own entry.
    contacts: dict[str, AerContacts] = Field(default_factory=dict)
    audit_logs: AerAuditLogs = AerAuditLogs()
    baseline_refresh_interval: Duration = 3600.0
    baseline_lookback: Duration = 14 * 86400.0
    # Events older than this train counters and profiles but raise nothing (history, back-fill).
    live_window: Duration = Field(default=3600.0, gt=0)
    # How often each process checks aer_versions for baselines or a Tor list another process
    # stored (PostgreSQL also pushes a NOTIFY at once); 0 turns the check off.
    sync_interval: DurationOrOff = 2.0
    # `securitybot aer update-tor-list` and the scheduler (every tor_list_refresh_interval; 0:
    # off) download this, validate it and publish it to every process through the database.
    tor_list_url: str = Field(
        default="https://check.torproject.org/torbulkexitlist", pattern=r"^https?://"
    )
    tor_list_refresh_interval: DurationOrOff = 6 * 3600.0
    tor_list_min_entries: int = Field(default=100, ge=1)
    tor_list_max_entries: int = Field(default=100_000, ge=1)
    # Repeats of one (org, user, anomaly type) within this window update one Slack message.
    notification_window: Duration = 3600.0
    max_body_bytes: int = Field(default=10 * 1024 * 1024 + 64 * 1024, ge=1024, le=64 << 20)
    # None: detection runs in the process that receives the events (no NATS needed).
    stream: AerStream | None = None
    reset_budget: AerResetBudget = AerResetBudget()

    @model_validator(mode="after")
    def _orgs_valid(self) -> AerConfig:
        from securitybot.aer.decide import AerConfigError, merge_org_config

        try:
            merge_org_config(self.defaults, None, org_id="*")
            for org, layer in self.orgs.items():
                merge_org_config(self.defaults, layer, org_id=org)
        except AerConfigError as exc:
            raise ValueError(str(exc)) from None
        return self


class StormLimit(_Section):
    """One kind's storm limit; unset fields take ``storm.max_people`` / ``storm.window``."""

    max_people: int | None = Field(default=None, ge=0, le=1_000_000)
    window: Duration | None = Field(default=None, gt=0, le=7 * 86400.0)


class StormConfig(_Section):
    """The storm guard: one detection (same kind and source) DMs at most ``max_people``
    distinct people in any ``window`` (counted in the database, so across replicas); the rest
    are held for a responder to release, discard or escalate. ``kinds.<kind>`` overrides."""

    max_people: int = Field(default=25, ge=0, le=1_000_000)
    window: Duration = Field(default=600.0, gt=0, le=7 * 86400.0)
    kinds: dict[str, StormLimit] = Field(default_factory=dict)

    def limit(self, kind: str) -> tuple[int, float]:
        """(max_people, window seconds) for ``kind``."""
        own = self.kinds.get(kind)
        people = own.max_people if own is not None and own.max_people is not None else None
        window = own.window if own is not None and own.window is not None else None
        return (self.max_people if people is None else people,
                self.window if window is None else window)  # fmt: skip


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


class Settings(_Section):
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

    @model_validator(mode="after")
    def _paging_calendar(self) -> Settings:
        if self.paging.when == "outside_business_hours" and self.policy.business_hours is None:
            raise ValueError(
                "paging.when outside_business_hours needs policy.business_hours (the calendar)"
            )
        return self

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


def find_config_path(cli_path: str | None, environ: Mapping[str, str] = os.environ) -> Path:
    """``--config PATH``, else ``$SECURITYBOT_CONFIG``, else ``./config.yaml``."""
    return Path(cli_path or environ.get("SECURITYBOT_CONFIG") or DEFAULT_CONFIG_PATH)


def _substitute(value: Any, environ: Mapping[str, str], where: str) -> Any:
    if isinstance(value, str):

        def repl(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in environ:
                return environ[name]
            if default is not None:
                return default
            raise ConfigError(f"config error: {where}: environment variable ${{{name}}} is not set")

        return _ENV_REF_RE.sub(repl, value)
    if isinstance(value, dict):
        return {
            k: _substitute(v, environ, f"{where}.{k}" if where else str(k))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_substitute(v, environ, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _apply_env_overrides(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        if len(path) < 2 or not all(path):
            continue
        value: Any
        if path[-1].endswith("_file"):
            # *_FILE variables point at a mounted secret (Docker/Kubernetes style).
            path[-1] = path[-1][: -len("_file")]
            try:
                value = Path(raw).read_text().strip()
            except OSError as exc:
                raise ConfigError(
                    f"config error: {name}: cannot read {raw!r}: {exc.strerror}"
                ) from None
        else:
            # Structured values (lists of tokens, mappings) arrive as YAML/JSON; scalars stay the
            # exact text typed, and pydantic coerces them ("8080" -> 8080, "10m" -> 600.0).
            try:
                parsed = yaml.safe_load(raw) if raw.strip() else None
            except yaml.YAMLError:
                parsed = None
            value = parsed if isinstance(parsed, dict | list) else raw
        node = data
        for key in path[:-1]:
            child = node.get(key)
            if not isinstance(child, dict):
                child = {}
                node[key] = child
            node = child
        node[path[-1]] = value


def _first_error_line(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key (check the spelling against config.yaml)"
    more = len(exc.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"config error: {loc}: {msg}{suffix}"


def load_config(
    path: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    required: bool = False,
) -> Settings:
    """Load, substitute, override and validate. Raises :class:`ConfigError` with one line."""
    env = os.environ if environ is None else environ
    cfg_path = find_config_path(str(path) if path else None, env)
    data: dict[str, Any] = {}
    if cfg_path.exists():
        try:
            loaded = yaml.safe_load(cfg_path.read_text()) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark else ""
            raise ConfigError(f"config error: {cfg_path}{where}: not valid YAML") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"config error: {cfg_path}: the top level must be a mapping")
        data = _substitute(loaded, env, "")
    elif required or path:
        raise ConfigError(f"config error: {cfg_path}: file not found")
    _apply_env_overrides(data, env)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_first_error_line(exc)) from None
