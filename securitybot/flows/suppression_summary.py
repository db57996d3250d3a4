"""The daily summary of what suppression rules closed, posted to the security channel.

Suppressed alerts are never silent: besides the metric and the dashboard, once a day the team
reads what was suppressed, by which rule. The summary is an outbox job scheduled for the next
``escalation.suppression_summary_at`` (UTC) by each replica's scheduler; it is enqueued only
at that time (a future-dated row would look like a stuck outbox in the metrics), and its
idempotency key is the day, so several replicas post it once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import select

from securitybot.i18n import ENGLISH, Translator
from securitybot.outbox.dispatcher import Done, GiveUp, Job, Outcome, RetryAt
from securitybot.slack import mrkdwn as md
from securitybot.slack.dates import slack_date
from securitybot.slack.gateway import SlackGateway, SlackPermanentError, SlackRetryLater
from securitybot.store.db import Database
from securitybot.store.models import Alert, utcnow
from securitybot.store.outbox import enqueue
from securitybot.store.suppression_models import SuppressionRule

logger = logging.getLogger(__name__)

EFFECT = "suppression_summary"
MAX_LINES = 30


# -- pure ------------------------------------------------------------------------------------


def next_run(now: datetime, at: time) -> datetime:
    """The next ``at`` (UTC) strictly after ``now``."""
    today = datetime.combine(now.astimezone(UTC).date(), at, tzinfo=UTC)
    return today if today > now else today + timedelta(days=1)


def summary_text(
    alerts: list[Alert], rules: dict[int, SuppressionRule], since: datetime, until: datetime,
    t: Translator = ENGLISH,
) -> str | None:  # fmt: skip
    """The post in ``t``'s language (the team's), or None when nothing was suppressed (no news
    is not posted)."""
    if not alerts:
        return None
    per_rule = Counter(a.suppression_id for a in alerts)
    n = len(alerts)
    lines = [
        t.ngettext(
            "*🔕 {count} alert suppressed* between {since} and {until}",
            "*🔕 {count} alerts suppressed* between {since} and {until}",
            n,
        ).format(count=n, since=slack_date(since), until=slack_date(until))
    ]
    for rule_id, count in per_rule.most_common():
        rule = rules.get(rule_id or 0)
        name = f"R{rule_id}" if rule is None else (
            f"R{rule.id} {rule.kind} " + " ".join(f"{k}={v}" for k, v in rule.matchers.items())
        )  # fmt: skip
        line = f"• {md.code(name.strip(), 200)} ×{count}"
        if rule is not None:
            line = t.gettext("{rule} by {user}: {reason}").format(
                rule=line, user=md.user(rule.created_by), reason=md.inline(rule.reason, 150)
            )
        lines.append(line)
    for a in alerts[:MAX_LINES]:
        who = md.user(a.user_id) if a.user_id else md.code(a.user_given, 100)
        lines.append(f"   #{a.id} {md.inline(a.title, 120)} · {who} · R{a.suppression_id}")
    if n > MAX_LINES:
        more = n - MAX_LINES
        lines.append("   " + t.ngettext(
            "…and {count} more (dashboard: Suppressions)",
            "…and {count} more (dashboard: Suppressions)",
            more,
        ).format(count=more))  # fmt: skip
    return "\n".join(lines)


# -- store -----------------------------------------------------------------------------------


def schedule(db: Database, at: datetime) -> None:
    """Enqueue the summary of the day before ``at`` (once per ``at``, whoever asks)."""
    with db.write() as session:
        enqueue(
            session, effect=EFFECT, at=at, idempotency_key=f"{EFFECT}:{at:%Y-%m-%dT%H:%M}",
            payload={"since": (at - timedelta(days=1)).isoformat(), "until": at.isoformat()},
        )  # fmt: skip


def _load(
    db: Database, since: datetime, until: datetime
) -> tuple[list[Alert], dict[int, SuppressionRule]]:
    with db.read() as session:
        alerts = list(
            session.scalars(
                select(Alert)
                .where(
                    Alert.suppression_id.is_not(None),
                    Alert.created_at >= since,
                    Alert.created_at < until,
                )
                .order_by(Alert.id)
            )
        )
        ids = {a.suppression_id for a in alerts if a.suppression_id}
        rules = {
            r.id: r
            for r in session.scalars(select(SuppressionRule).where(SuppressionRule.id.in_(ids)))
        }
        session.expunge_all()
    return alerts, rules


def due(at: time, now: datetime | None = None) -> datetime:
    """The summary time that has just come (today's ``at``, or yesterday's if not yet)."""
    now = now or utcnow()
    return next_run(now, at) - timedelta(days=1)


@dataclass
class SummaryHandler:
    db: Database
    slack: SlackGateway | None
    channel: str | None
    t: Translator = ENGLISH  # the team's language (i18n.team_locale)

    async def __call__(self, job: Job) -> Outcome:
        since = datetime.fromisoformat(str(job.payload["since"]))
        until = datetime.fromisoformat(str(job.payload["until"]))
        if self.slack is None or not self.channel:
            return GiveUp("Slack or slack.security_channel is not configured")
        alerts, rules = await asyncio.to_thread(_load, self.db, since, until)
        text = summary_text(alerts, rules, since, until, self.t)
        if text is None:
            return Done()
        key = {"kind": EFFECT, "until": until.isoformat()}
        try:
            if job.claims > 1 and await self.slack.find_delivery(
                self.channel, key, oldest=job.created_epoch - 60
            ):
                return Done()  # an earlier run posted it and was cut off before recording so
            await self.slack.post(self.channel, md.fallback(text), [md.section(text)],
                                  delivery=key)  # fmt: skip
        except SlackRetryLater as exc:
            return RetryAt(utcnow() + timedelta(seconds=exc.retry_after or 30), str(exc))
        except SlackPermanentError as exc:
            return GiveUp(str(exc))
        logger.info("suppression summary posted: %s alerts", len(alerts))
        return Done()
