"""What AER does about each anomaly: decide (``decide.decide``), spend the org's reset budget
(:mod:`securitybot.aer.budget`; past it the reset is held for a responder), record the decision
and enqueue the jobs it calls for (reset, escalation, asking the user, notifications), all in
the caller's transaction."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from securitybot.aer import budget, store
from securitybot.aer.decide import Action, OrgAerConfig, Verdict, decide, held
from securitybot.aer.detect import Anomaly
from securitybot.aer.metrics import count_decisions
from securitybot.aer.notify import consolidate, recipients
from securitybot.aer.respond import ASK_EFFECT, ESCALATE_EFFECT, RESET_EFFECT
from securitybot.config import AerConfig
from securitybot.store.outbox import enqueue_many

_NOTIFYING = {
    Verdict.RESET, Verdict.NOTIFY, Verdict.COOLDOWN, Verdict.ESCALATE_PERSISTENCE, Verdict.HELD,
}  # fmt: skip


def record_decisions(
    session: Session,
    anomalies: Iterable[Anomaly],
    now: datetime,
    *,
    cfg: AerConfig,
    org_config: Callable[[str], OrgAerConfig],
    sessions: Mapping[tuple[str, str], Mapping[str, None]],
    clock: datetime,
    source: str = "engine",
    refs: Sequence[str | None] | None = None,
) -> dict[str, int]:
    """Decide on each anomaly and act on it; the count of each verdict. ``sessions``: the ones
    seen per (org, user), which a reset records as killed; ``clock``: when resets are granted
    (the reset budget's now)."""
    anomalies = list(anomalies)
    counts: dict[str, int] = {}
    decided: list[tuple[str, str, str | None]] = []
    jobs: list[dict[str, Any]] = []
    ledger = budget.Ledger(session, cfg.reset_budget, clock)
    holds = budget.HeldResets(session, cfg.reset_budget, ledger.now)
    ledger.lock(
        a.org for a in anomalies
        if org_config(a.org).response_for(a.type) is Action.RESET_SESSIONS
    )  # fmt: skip
    for i, a in enumerate(anomalies):
        org_cfg = org_config(a.org)
        d = decide(a, org_cfg, store.user_history(session, a.org, a.user), now)
        if d.verdict is Verdict.RESET and not ledger.take(a.org):
            d = held(d, a.org, budget.describe_reason(cfg.reset_budget))
        aid = store.insert_anomaly(session, {
            "org": a.org, "user_id": a.user, "type": a.type, "rule": a.rule[:80],
            "source": source, "source_ref": refs[i] if refs else None,
            "session_id": a.session, "ip": a.ip, "user_agent": a.user_agent,
            "observed": str(a.observed)[:200],
            "threshold": None if a.threshold is None else str(a.threshold)[:200],
            "details": json.loads(json.dumps(a.details, default=str)),
            "verdict": d.verdict.value, "action": d.action.value if d.action else None,
            "reason": d.reason, "occurred_at": a.ts, "created_at": now,
            "response": "held" if d.verdict is Verdict.HELD else None,
        })  # fmt: skip
        if aid is None:  # an audit-log entry polled twice
            if d.verdict is Verdict.RESET:
                ledger.give_back(a.org)
            continue
        counts[d.verdict.value] = counts.get(d.verdict.value, 0) + 1
        decided.append((a.type, d.verdict.value, d.action.value if d.action else None))
        p = {
            "anomaly_id": aid, "org": a.org, "user": a.user, "type": a.type,
            "rule": a.rule, "observed": a.observed, "threshold": a.threshold,
            "session": a.session, "ip": a.ip, "user_agent": a.user_agent,
            "reason": d.reason, "reason_i18n": d.why.to_json(),
        }  # fmt: skip
        killed: list[str] = []
        if d.verdict in (Verdict.RESET, Verdict.HELD):
            seen = [
                *sessions.get((a.org, a.user), {}),
                *([a.session] if a.session else []),
            ]
            killed = [s for s in dict.fromkeys(seen) if s]
            p["sessions"] = killed
        if d.verdict is Verdict.RESET:
            ledger.grant(a.org, aid)
            store.record_reset(session, a.org, a.user, now, killed)
            jobs.append({"effect": RESET_EFFECT, "payload": p,
                         "idempotency_key": f"aer-reset:{aid}"})  # fmt: skip
        elif d.verdict is Verdict.HELD:
            holds.hold(p)
        elif d.verdict is Verdict.ESCALATE_PERSISTENCE:
            store.record_escalation(session, a.org, a.user, a.session, now)
            jobs.append({"effect": ESCALATE_EFFECT, "payload": p,
                         "idempotency_key": f"aer-escalate:{aid}"})  # fmt: skip
        elif d.verdict is Verdict.ASK_USER:
            jobs.append({"effect": ASK_EFFECT, "payload": p,
                         "idempotency_key": f"aer-ask:{aid}"})  # fmt: skip
        if d.verdict in _NOTIFYING:
            targets = recipients(org_cfg.notify, a.org, cfg.contacts)
            jobs += consolidate(
                session, org=a.org, user=a.user, kind=a.type, targets=targets,
                reason=d.why, now=now, window=cfg.notification_window,
            )  # fmt: skip
    enqueue_many(session, [*jobs, *holds.finish()])
    count_decisions(session, decided)
    return counts
