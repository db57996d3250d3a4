"""How long each category of data is kept, and the legal holds that keep it anyway."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, field_validator

from securitybot.config.base import Duration, DurationOrOff, _Section, unquoted_time


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
    # The longest one batch should hold the write transaction (SQLite's single writer, the
    # rows' locks on PostgreSQL): a batch that took longer halves the next, down to 20 rows;
    # one under half of it grows the next back towards batch_size.
    batch_time: Duration = 0.05
    # When the daily purge runs (UTC, HH:MM); one replica at a time holds its lease.
    # H:MM is taken too (it always was); an unquoted one gets the hint to quote it.
    run_at: Annotated[str, BeforeValidator(unquoted_time)] = "03:30"

    @field_validator("alerts", "audit", "outbox", "aer", mode="before")
    @classmethod
    def _unset_keeps(cls, v: Any) -> Any:
        return 0 if v is None else v

    @field_validator("run_at")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        from securitybot.domain.business_hours import parse_hhmm

        try:
            parse_hhmm(v)
        except ValueError:
            raise ValueError(f"{v!r} is not a time of day (UTC, HH:MM)") from None
        return v

    @property
    def enabled(self) -> bool:
        return any((self.alerts, self.audit, self.outbox, self.aer))
