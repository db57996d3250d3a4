"""Prometheus metrics of Anomaly Event Response.

Counters count what *this process* did: the server for events it received (and, without a
stream, judged itself), each ``securitybot aer worker`` for what it judged (served on its own
``--metrics-port``). Decisions are counted only once their transaction commits, so a batch that
is retried after a failure is not counted twice.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable

from prometheus_client import Counter, Gauge
from sqlalchemy import event
from sqlalchemy.orm import Session

EVENTS_RECEIVED = Counter(
    "securitybot_aer_events_received",
    "Activity events accepted by POST /api/v1/events, by what happened to them",
    ["result"],  # accepted | rejected
)
EVENTS_JUDGED = Counter(
    "securitybot_aer_events_judged",
    "Activity events observed by detection (live ones judged, older ones learned from)",
    ["window"],  # live | history
)
ANOMALIES = Counter(
    "securitybot_aer_anomalies", "Anomalies detected and decided on", ["type", "verdict"]
)
DECISIONS = Counter(
    "securitybot_aer_decisions",
    "Decisions taken, by action (held: a reset past the budget; none: nothing to do)",
    ["action"],
)
RESETS = Counter(
    "securitybot_aer_resets", "Session resets carried out, by result", ["result"]
)  # done | refused | failed
RESETS_HELD = Counter(
    "securitybot_aer_resets_held", "Automatic resets held past aer.reset_budget for a responder"
)
PARTITION_LAG = Gauge(
    "securitybot_aer_partition_lag",
    "Messages of a stream partition not yet delivered to its worker (JetStream's num_pending)",
    ["partition"],
)


def count_decisions(session: Session, decided: Iterable[tuple[str, str, str | None]]) -> None:
    """Count ``(type, verdict, action)`` triples once ``session`` commits (never on rollback)."""
    tally = Tally(decided)
    if not tally:
        return

    def committed(_session: Session) -> None:
        for (kind, verdict, action), n in tally.items():
            ANOMALIES.labels(kind, verdict).inc(n)
            DECISIONS.labels(action or ("held" if verdict == "held" else "none")).inc(n)
            if verdict == "held":
                RESETS_HELD.inc(n)

    event.listen(session, "after_commit", committed, once=True)
