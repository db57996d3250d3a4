"""Prometheus metrics. Counters and histograms live in the process-wide registry (they count
what this process did); outbox depth/age are read from the database at scrape time, because
with several replicas the queue is shared and only the database knows its true size."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select

# AER's counters: imported here so every /metrics lists them, with or without AER traffic yet.
from securitybot.aer import metrics as _aer_metrics  # noqa: F401
from securitybot.store.db import Database
from securitybot.store.models import Alert, Outbox, utcnow

_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)

ALERTS_INGESTED = Counter(
    "securitybot_alerts_ingested", "Alerts accepted by ingest", ["source", "kind"]
)
OUTCOMES = Counter("securitybot_alert_outcomes", "Alerts reaching a final outcome", ["outcome"])
ESCALATIONS = Counter("securitybot_escalations", "Alerts escalated to the team", ["reason"])
TIME_TO_FIRST_DM = Histogram(
    "securitybot_time_to_first_dm_seconds", "Ingest to the DM being posted", buckets=_BUCKETS
)
TIME_TO_ANSWER = Histogram(
    "securitybot_time_to_answer_seconds", "DM posted to the user's answer", buckets=_BUCKETS
)
# Rows the daily purge deleted, per retention category (retention.alerts/audit/outbox/aer).
RETENTION_PURGED = Counter(
    "securitybot_retention_purged_rows", "Rows deleted by the retention purge", ["category"]
)
DUO_RESULTS = Counter("securitybot_duo_results", "Final Duo results", ["result"])
DUO_LATENCY = Histogram(
    "securitybot_duo_latency_seconds", "Duo API call latency", ["call"],
    # auth_status long-polls: Duo holds it until the phone answers, up to about a minute.
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 90),
)  # fmt: skip
# The same results and latencies for whichever second factor is configured (verify.provider).
VERIFY_RESULTS = Counter(
    "securitybot_verify_results", "Final second-factor results", ["provider", "result"]
)
VERIFY_LATENCY = Histogram(
    "securitybot_verify_latency_seconds", "Second-factor API call latency", ["provider", "call"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 90),
)  # fmt: skip
SWEEP_DURATION = Histogram(
    "securitybot_sweep_duration_seconds", "Deadline sweep duration",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5),
)  # fmt: skip
SLACK_ERRORS = Counter("securitybot_slack_api_errors", "Slack Web API errors", ["method", "error"])
# How long Slack calls waited for their rate bucket (the method's tier, the workspace's post
# ceiling, the channel's one post a second) before they were sent, per method.
SLACK_BUCKET_WAIT = Histogram(
    "securitybot_slack_bucket_wait_seconds",
    "Time a Slack Web API call waited for its rate-limit bucket", ["method"],
    buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)  # fmt: skip
SLACK_DUPLICATES = Counter(
    "securitybot_slack_duplicate_deliveries",
    "Slack retries and replays acknowledged and ignored", ["kind"],
)  # fmt: skip
SLACK_CHANNEL_PROBLEM = Gauge(
    "securitybot_slack_channel_problem",
    "1 while posts to this Slack channel fail for a reason only the workspace can fix "
    "(not_in_channel: invite the bot; channel_not_found; is_archived)", ["channel", "error"],
)  # fmt: skip
SLACK_REFUSED = Counter(
    "securitybot_slack_requests_refused",
    "Signed Slack requests refused: from a team or enterprise the app does not serve", ["reason"],
)  # fmt: skip
# The storm guard (securitybot.storms): alerts held instead of DMed, and what responders
# decided for them (escalated ones are also counted in securitybot_escalations{reason="storm"}).
STORM_HELD = Counter("securitybot_storm_alerts_held", "Alerts held by the storm guard", ["kind"])
STORM_RELEASED = Counter(
    "securitybot_storm_alerts_released", "Held alerts a responder released (DMed)", ["kind"]
)
STORM_DISCARDED = Counter(
    "securitybot_storm_alerts_discarded", "Held alerts a responder discarded", ["kind"]
)
# Paging the on-call (securitybot.paging): steps delivered to each pager, and its 429s.
PAGES_SENT = Counter(
    "securitybot_pages_sent", "Lifecycle steps delivered to a pager", ["provider", "step"]
)
PAGES_RATE_LIMITED = Counter(
    "securitybot_pages_rate_limited", "Pager API answers of 429 (retried later)", ["provider"]
)


# Jobs that wait, by design, for Slack credentials: counted by securitybot_alerts_waiting, not
# as a stuck outbox (SecuritybotOutboxStuck would otherwise page while Slack is unconfigured).
WAITING_FOR_SLACK = ("start_conversation",)


class OutboxCollector(Collector):
    def __init__(self, db: Database, slack_configured: bool = True) -> None:
        self.db = db
        self.slack_configured = slack_configured

    def collect(self) -> Iterator[GaugeMetricFamily]:
        # One scan of the pending rows for both figures (as before the Slack exception).
        waiting = () if self.slack_configured else WAITING_FOR_SLACK
        aged = case((Outbox.effect.in_(waiting), None), else_=Outbox.created_at)
        with self.db.read() as session:
            depth, oldest = session.execute(
                select(func.count(), func.min(aged)).where(Outbox.status == "pending")
            ).one()
            dead_by_effect = session.execute(
                select(Outbox.effect, func.count()).where(Outbox.status == "dead")
                .group_by(Outbox.effect)
            ).all()  # fmt: skip
        dead = sum(int(n) for _, n in dead_by_effect)
        age = 0.0
        if oldest is not None:
            if isinstance(oldest, str):  # SQLite aggregate results skip the column type
                from datetime import UTC, datetime

                oldest = datetime.fromisoformat(oldest).replace(tzinfo=UTC)
            age = max(0.0, (utcnow() - oldest).total_seconds())
        yield GaugeMetricFamily("securitybot_outbox_depth", "Pending outbox rows", value=depth)
        yield GaugeMetricFamily(
            "securitybot_outbox_oldest_age_seconds", "Age of the oldest pending row", value=age
        )
        yield GaugeMetricFamily(
            "securitybot_outbox_dead", "Outbox rows that gave up (need a human)", value=dead
        )
        by_effect = GaugeMetricFamily(
            "securitybot_outbox_dead_jobs", "Outbox rows that gave up, by effect", labels=["effect"]
        )
        for effect, count in dead_by_effect:
            by_effect.add_metric([effect], int(count))
        yield by_effect


class WaitingCollector(Collector):
    """Alerts stored but not asked about because Slack is not configured (README's promise)."""

    def __init__(self, db: Database, slack_configured: bool) -> None:
        self.db = db
        self.slack_configured = slack_configured

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "securitybot_alerts_waiting", "Alerts waiting before anyone is asked", labels=["reason"]
        )
        waiting = 0
        if not self.slack_configured:
            # Without Slack every `new` alert waits (start_conversation puts its job back).
            with self.db.read() as session:
                waiting = session.scalar(select(func.count()).where(Alert.status == "new")) or 0
        family.add_metric(["slack_unconfigured"], waiting)
        yield family


class DeadLetterCollector(Collector):
    """AER messages workers refused, by reason: counted from ``aer_dead_letters`` (every
    worker writes there, and workers serve no metrics), so any replica reports the total."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[CounterMetricFamily]:
        from securitybot.aer.deadletters import REASONS
        from securitybot.store.aer_models import AerDeadLetter

        with self.db.read() as session:
            counts = dict(
                session.execute(
                    select(AerDeadLetter.reason, func.count()).group_by(AerDeadLetter.reason)
                ).all()
            )
        family = CounterMetricFamily(
            "securitybot_aer_dead_letters", "AER stream messages dead-lettered, not acted on",
            labels=["reason"],
        )  # fmt: skip
        for reason in sorted(set(REASONS) | set(counts)):
            family.add_metric([reason], int(counts.get(reason, 0)))
        yield family


class HeldResetsCollector(Collector):
    """AER resets held past aer.reset_budget and not yet released or discarded (from SQL, so
    every replica reports the same value: use max())."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from securitybot.store.aer_budget_models import AerHeldReset

        with self.db.read() as session:
            held = session.scalar(
                select(func.count()).where(AerHeldReset.status == "held")
            ) or 0  # fmt: skip
        yield GaugeMetricFamily(
            "securitybot_aer_resets_held_open",
            "AER session resets held for a responder's Release or Discard", value=held,
        )  # fmt: skip


class Metrics:
    def __init__(self, db: Database, *, slack_configured: bool = True) -> None:
        from securitybot.privacy.ages import OldestRowCollector

        self.local = CollectorRegistry(auto_describe=False)
        self.local.register(OldestRowCollector(db))
        self.local.register(OutboxCollector(db, slack_configured))
        self.local.register(HeldResetsCollector(db))
        self.local.register(DeadLetterCollector(db))
        self.local.register(WaitingCollector(db, slack_configured))

    def render(self) -> bytes:
        return generate_latest(REGISTRY) + generate_latest(self.local)
