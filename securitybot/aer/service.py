"""AER ingest: events through the in-memory engine, counters and decisions into SQL.

The engine is per process and not thread-safe, so one lock serialises batches; detection for
an org must therefore run in one process (see docs/scaling.md). Everything the engine knows
that matters after a restart (baselines, user profiles, the live hour's counters) is persisted
and reloaded by :meth:`AerService.load_state`.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from securitybot.aer import budget, shared, store
from securitybot.aer.baselines import WINDOW_SECONDS, Baseline, learn_baseline
from securitybot.aer.decide import (
    Action,
    OrgAerConfig,
    Verdict,
    decide,
    held,
    merge_org_config,
    merged_org_mapping,
)
from securitybot.aer.detect import Anomaly, CounterKey, DetectionEngine
from securitybot.aer.events import ActivityEvent
from securitybot.aer.metrics import EVENTS_JUDGED, count_decisions
from securitybot.aer.notify import consolidate, recipients
from securitybot.aer.respond import ASK_EFFECT, ESCALATE_EFFECT, RESET_EFFECT
from securitybot.aer.rules import (
    DETECTION_KEYS,
    DetectionConfig,
    OrgDetectionConfig,
    Rules,
    TorList,
    load_rules,
)
from securitybot.config import AerConfig
from securitybot.store.alerts import audit
from securitybot.store.db import Database
from securitybot.store.models import utcnow
from securitybot.store.outbox import enqueue_many

logger = logging.getLogger(__name__)

SETTINGS_CHANGED = "pref.anomaly_event_response_changed"
# Sessions remembered per user so a reset records which sessions it killed (bounded: a user
# with thousands of sessions is a scraper, and the newest are the ones that matter).
_SESSIONS_PER_USER = 32
# Sessions first seen longer ago than this are not reloaded at start-up (Slack sessions of
# long-idle clients re-authenticate; the engine also caps how many it holds).
_SESSION_LOOKBACK = timedelta(days=30)
_NOTIFYING = {
    Verdict.RESET, Verdict.NOTIFY, Verdict.COOLDOWN, Verdict.ESCALATE_PERSISTENCE, Verdict.HELD,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class _DefaultingDetectionConfig(DetectionConfig):
    """``aer.defaults`` applies to orgs that have no ``aer.orgs`` entry of their own."""

    default: OrgDetectionConfig = field(default_factory=OrgDetectionConfig)

    def for_org(self, org: str) -> OrgDetectionConfig:
        return self.orgs.get(org) or self.default


@dataclass(frozen=True)
class BatchResult:
    accepted: int
    anomalies: int
    decisions: dict[str, int]
    # Accepted events older than the live window: learned from, never judged.
    history: int = 0


@dataclass(frozen=True)
class Refreshed:
    learned: int
    changed: int  # new or different from the stored baseline of the same (org, action)
    version: int  # of the baselines in SQL after this refresh


def _same(a: Baseline, b: Baseline) -> bool:
    keys = ("level", "samples", "p50", "p90", "p99", "mad")
    return all(abs(float(getattr(a, k)) - float(getattr(b, k))) < 1e-9 for k in keys)


def _hour(ts: datetime) -> datetime:
    epoch = int(ts.timestamp()) // WINDOW_SECONDS * WINDOW_SECONDS
    return datetime.fromtimestamp(epoch, UTC)


class AerService:
    def __init__(
        self, cfg: AerConfig, db: Database, *, rules: Rules | None = None,
        tor: TorList | None = None,
    ) -> None:  # fmt: skip
        """``rules`` and ``tor`` may be shared (a stream worker runs one service per partition)."""
        self.cfg, self.db = cfg, db
        self.rules = rules or load_rules(cfg.rules_path)
        if tor is None:
            tor = TorList.from_file(cfg.tor_list) if cfg.tor_list else TorList()
        self.tor = tor
        merged = {org: merged_org_mapping(cfg.defaults, layer) for org, layer in cfg.orgs.items()}
        detection = DetectionConfig.build(self.rules, merged)
        default = OrgDetectionConfig.from_mapping(
            {k: v for k, v in cfg.defaults.items() if k in DETECTION_KEYS}, "aer.defaults"
        )
        self.engine = DetectionEngine(
            _DefaultingDetectionConfig(detection.rules, detection.orgs, default), self.tor
        )
        self._org_cfgs: dict[str, OrgAerConfig] = {}
        self.lock = threading.Lock()
        # Set by wiring: tells the outbox dispatcher that new jobs were written.
        self.wake: Callable[[], None] = lambda: None
        # The reset budget's clock: resets are counted when they are granted (a worker working
        # off an old backlog judges by the events' time, but signs people out now).
        self.clock: Callable[[], datetime] = utcnow
        self._sessions: dict[tuple[str, str], dict[str, None]] = {}
        self._dirty: set[tuple[str, str]] = set()
        self._unflushed: dict[CounterKey, int] = {}
        # Anomalies of batches whose SQL write failed: the engine will not raise them again
        # (fired, deduped), so they are kept and decided with the next write, like the counters.
        self._undecided: list[Anomaly] = []
        self._undecided_refs: list[str | None] = []  # the stream position of each, or None
        self._unsaved_sessions: dict[tuple[str, str], shared.SessionState] = {}
        # Versions of shared state last loaded (aer_versions); -1: load on the first sync.
        self._versions = {shared.BASELINES: -1, shared.TOR_LIST: -1}

    def org_config(self, org: str) -> OrgAerConfig:
        cfg = self._org_cfgs.get(org)
        if cfg is None:
            cfg = self._org_cfgs[org] = merge_org_config(
                self.cfg.defaults, self.cfg.orgs.get(org), org_id=org, rules=self.rules
            )
        return cfg

    # --- ingest -------------------------------------------------------------------------

    def ingest(
        self, events: Sequence[ActivityEvent], now: datetime | None = None, *,
        refs: Sequence[str] | None = None, in_tx: Callable[[Session], None] | None = None,
    ) -> BatchResult:  # fmt: skip
        """Observe a parsed batch, persist its counters and decide on its anomalies atomically.

        Events older than ``aer.live_window`` (relative to ``now``) are history: they train the
        engine but raise no anomaly, so a back-fill never resets or notifies anybody.
        ``refs`` names each event (a stream position): its anomalies are recorded under
        ``<ref>:<n>``, once only. ``in_tx`` runs in the same transaction, last (a worker moves
        its committed position there).
        """
        when = now or utcnow()
        live_since = when - timedelta(seconds=self.cfg.live_window)
        learned = 0
        with self.lock:
            observe, found = self.engine.observe, []
            found_refs: list[str | None] = []
            sessions, dirty = self._sessions, self._dirty
            for i, ev in enumerate(events):
                if ev.ts < live_since:
                    learned += 1
                    observe(ev, learn=True)
                else:
                    hits = observe(ev)
                    if hits:
                        found.extend(hits)
                        if refs is not None:
                            found_refs.extend(f"{refs[i]}:{k}" for k in range(len(hits)))
                if ev.session is not None:
                    key = (ev.org, ev.user)
                    seen = sessions.get(key)
                    if seen is None:
                        seen = sessions[key] = {}
                    if ev.session not in seen:
                        seen[ev.session] = None
                        dirty.add(key)
                        if len(seen) > _SESSIONS_PER_USER:
                            del seen[next(iter(seen))]
                elif ev.asn is not None or ev.country is not None:
                    dirty.add((ev.org, ev.user))
            for ckey, n in self.engine.drain_counters().items():
                self._unflushed[ckey] = self._unflushed.get(ckey, 0) + n
            self._undecided.extend(found)
            self._undecided_refs.extend(found_refs if refs is not None else [None] * len(found))
            self._unsaved_sessions.update(self.engine.drain_sessions())
            with self.db.write() as session:
                store.add_counters(session, self._unflushed)
                shared.save_sessions(session, self._unsaved_sessions)
                refs_now = self._undecided_refs if any(self._undecided_refs) else None
                decisions = self.handle(session, self._undecided, when, refs=refs_now)
                if in_tx is not None:
                    in_tx(session)
            # Only forget deltas, sessions and anomalies once committed; a failure retries them.
            self._unflushed.clear()
            self._unsaved_sessions.clear()
            decided, self._undecided, self._undecided_refs = len(self._undecided), [], []
        EVENTS_JUDGED.labels("history").inc(learned)
        EVENTS_JUDGED.labels("live").inc(len(events) - learned)
        return BatchResult(len(events), decided, decisions, learned)

    def handle(
        self, session: Session, anomalies: Iterable[Anomaly], now: datetime,
        source: str = "engine", refs: Sequence[str | None] | None = None,
    ) -> dict[str, int]:  # fmt: skip
        """Decide on each anomaly, record the decision, and enqueue what it calls for.

        A reset spends the org's reset budget (:mod:`securitybot.aer.budget`); past it, the
        reset is held for a responder instead.
        """
        anomalies = list(anomalies)
        counts: dict[str, int] = {}
        decided: list[tuple[str, str, str | None]] = []
        jobs: list[dict[str, Any]] = []
        ledger = budget.Ledger(session, self.cfg.reset_budget, self.clock())
        holds = budget.HeldResets(session, self.cfg.reset_budget, ledger.now)
        ledger.lock(
            a.org for a in anomalies
            if self.org_config(a.org).response_for(a.type) is Action.RESET_SESSIONS
        )  # fmt: skip
        for i, a in enumerate(anomalies):
            cfg = self.org_config(a.org)
            d = decide(a, cfg, store.user_history(session, a.org, a.user), now)
            if d.verdict is Verdict.RESET and not ledger.take(a.org):
                d = held(d, a.org, budget.describe_reason(self.cfg.reset_budget))
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
                    *self._sessions.get((a.org, a.user), {}),
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
                targets = recipients(cfg.notify, a.org, self.cfg.contacts)
                jobs += consolidate(
                    session, org=a.org, user=a.user, kind=a.type, targets=targets,
                    reason=d.why, now=now, window=self.cfg.notification_window,
                )  # fmt: skip
        enqueue_many(session, [*jobs, *holds.finish()])
        count_decisions(session, decided)
        return counts

    # --- state across restarts ----------------------------------------------------------

    def load_state(
        self, now: datetime | None = None, only: Callable[[str], bool] | None = None
    ) -> None:
        """Rebuild baselines, profiles and the live hour's counters from SQL.

        ``only`` keeps the orgs it accepts (a stream worker's partition).
        """
        hour = _hour(now or utcnow())
        self.sync()
        with self.db.read() as session:
            profiles = store.load_profiles(session)
            live = store.live_counters(session, hour)
            open_sessions = shared.load_sessions(session, hour - _SESSION_LOOKBACK)
        if only is not None:
            profiles = [p for p in profiles if only(p.org)]
            live = [row for row in live if only(row[0])]
            open_sessions = [row for row in open_sessions if only(row.org)]
        with self.lock:
            for p in profiles:
                self.engine.seed_user_profile(p.org, p.user_id, p.asns, p.countries, p.ua_products)
            for org, user, action, bucket, n in live:
                self.engine.seed_counter(org, user, action, bucket, n)
            for row in open_sessions:  # oldest first: the engine keeps the newest when full
                self.engine.seed_session(row.org, row.session_id, row.user_agent, row.client)
        logger.info(
            "AER state loaded: %s profiles, %s live counters, %s sessions",
            len(profiles), len(live), len(open_sessions),
        )  # fmt: skip

    def dirty_profiles(self) -> dict[tuple[str, str], tuple[Any, ...]]:
        """Profiles changed since the last call (the caller holds ``lock`` or is ingest)."""
        dirty, self._dirty = self._dirty, set()
        return {k: p for k in dirty if (p := self.engine.user_profile(*k)) is not None}

    def flush_profiles(self) -> int:
        with self.lock:
            profiles = self.dirty_profiles()
        if profiles:
            with self.db.write() as session:
                store.save_profiles(session, profiles)
        return len(profiles)

    def sync(self) -> list[str]:
        """Reload whatever shared state another process (or the CLI) changed; what reloaded.

        The version is read before the data, so a change landing in between is seen next time.
        """
        with self.db.read() as session:
            seen = shared.versions(session)
        moved = [
            n for n in (shared.BASELINES, shared.TOR_LIST) if seen.get(n, 0) != self._versions[n]
        ]
        if shared.BASELINES in moved:
            with self.db.read() as session:
                baselines = store.load_baselines(session)
            with self.lock:
                for b in baselines:
                    self.engine.set_baseline(b)
            logger.info(
                "AER loaded %s baselines (version %s)", len(baselines), seen.get(shared.BASELINES)
            )
        if shared.TOR_LIST in moved:
            with self.db.read() as session:
                row = shared.threat_list(session, shared.TOR_LIST)
                ips = None if row is None else list(row.entries)
            if ips is not None:  # never downloaded: the configured file stays in force
                self.tor.replace(ips)
                logger.info("AER loaded %s Tor exits", len(ips))
        self._versions.update({n: seen.get(n, 0) for n in moved})
        return moved

    def refresh_baselines(self, now: datetime | None = None) -> Refreshed:
        """Re-learn every (org, action) baseline from the persisted counters and publish them.

        Only a real change bumps the shared version, so replicas starting up (each refreshes)
        do not make every other replica reload for nothing.
        """
        now = now or utcnow()
        until = _hour(now)  # the live hour is incomplete: learning from it would lag attacks
        since = until - timedelta(seconds=self.cfg.baseline_lookback)
        with self.db.read() as session:
            counts = store.window_counts(session, since, until, self.rules.volume_actions)
            old = {(b.org, b.action): b for b in store.load_baselines(session)}
        learned = [
            learn_baseline(org, action, values, computed_at=now)
            for (org, action), values in counts.items()
        ]
        changed = [
            b for b in learned if (o := old.get((b.org, b.action))) is None or not _same(o, b)
        ]
        with self.db.write() as session:
            store.save_baselines(session, learned)
            if changed:
                version = shared.bump(session, shared.BASELINES)
            else:
                version = shared.versions(session).get(shared.BASELINES, 0)
        self.sync()
        return Refreshed(len(learned), len(changed), version)

    def audit_settings_changes(self) -> list[str]:
        """Audit every org whose effective AER settings differ from the last ones persisted."""
        changed = []
        current = self.effective_settings()
        with self.db.write() as session:
            for org, settings in current.items():
                old = store.get_snapshot(session, org)
                if old == settings:
                    continue
                audit(
                    session, action=SETTINGS_CHANGED, actor="config", org=org,
                    details={"old": old, "new": settings},
                )  # fmt: skip
                store.put_snapshot(session, org, settings)
                changed.append(org)
        return changed

    def effective_settings(self) -> dict[str, dict[str, Any]]:
        out = {"*": _plain(dict(self.cfg.defaults))}
        for org, layer in self.cfg.orgs.items():
            out[org] = _plain(merged_org_mapping(self.cfg.defaults, layer))
        return out


def _plain(value: Mapping[str, Any]) -> dict[str, Any]:
    # Through JSON so the comparison with the stored snapshot is like for like.
    data: dict[str, Any] = json.loads(json.dumps(value, sort_keys=True, default=str))
    return data
