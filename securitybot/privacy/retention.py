"""The retention policy, as pure functions: which categories are purged, the cut-off of each,
and what a legal hold protects. The store adapter (:mod:`securitybot.privacy.purge`) turns this
into batched deletes; nothing here touches the database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from securitybot.config import RetentionConfig
from securitybot.domain.alert_machine import TERMINAL

# The categories a privacy review asks about; each is one `retention.<name>` key and one label
# of the purge metrics.
CATEGORIES: tuple[str, ...] = ("alerts", "audit", "outbox", "aer")

# Statuses an alert may be purged in: an alert still being worked (new, awaiting an answer or a
# push, escalated, triaging) is never purged, however old.
FINISHED: frozenset[str] = frozenset(str(s) for s in TERMINAL)

# Outbox jobs that will never run again.
FINISHED_JOBS: frozenset[str] = frozenset({"done", "dead"})


@dataclass(frozen=True)
class Hold:
    """What ``retention.hold`` names: alert ids, people (emails lower-cased, Slack ids), kinds."""

    alerts: frozenset[int] = frozenset()
    people: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.alerts or self.people or self.kinds)

    def holds_alert(self, alert_id: int, kind: str, *people: str | None) -> bool:
        return (
            alert_id in self.alerts
            or kind in self.kinds
            or any(p is not None and _norm(p) in self.people for p in people)
        )

    def holds_person(self, person: str | None) -> bool:
        return person is not None and _norm(person) in self.people


def _norm(person: str) -> str:
    return person.strip().lower() if "@" in person else person.strip()


@dataclass(frozen=True)
class Policy:
    """Cut-offs (rows older than these go) per category; a category absent is kept forever."""

    cutoffs: dict[str, datetime]
    hold: Hold

    def cutoff(self, category: str) -> datetime | None:
        return self.cutoffs.get(category)


def policy(config: RetentionConfig, now: datetime, *, extra_people: frozenset[str] = frozenset()
           ) -> Policy:  # fmt: skip
    """The policy in force at ``now``. ``extra_people``: other names of held people (the Slack
    ids of held emails, from the people cache), so a hold by email also protects AER rows."""
    cutoffs = {
        name: now - timedelta(seconds=seconds)
        for name in CATEGORIES
        if (seconds := getattr(config, name)) > 0
    }
    h = config.hold
    hold = Hold(
        alerts=frozenset(h.alerts),
        people=frozenset(_norm(p) for p in (*h.people, *extra_people)),
        kinds=frozenset(h.kinds),
    )
    return Policy(cutoffs=cutoffs, hold=hold)


def alert_eligible(status: str, finished_at: datetime, cutoff: datetime) -> bool:
    """A finished alert whose last change is older than the cut-off (the hold is apart)."""
    return status in FINISHED and finished_at < cutoff
