"""Anomaly Event Response: Slack's audit logs, the NATS stream, contacts and reset budgets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, model_validator

from securitybot.config.base import Duration, DurationOrOff, _Section
from securitybot.shipped import ALERTS_DIR


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
