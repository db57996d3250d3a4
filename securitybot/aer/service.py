"""AER ingest: events through the in-memory engine, counters and decisions into SQL.

The engine is per process and not thread-safe, so one lock serialises batches; detection for
an org must therefore run in one process (see docs/scaling.md). Everything the engine knows
that matters after a restart (baselines, user profiles, the live hour's counters) is persisted
and reloaded by :meth:`AerService.load_state`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from securitybot.aer import shared, store
from securitybot.aer.anomaly_decisions import record_decisions
from securitybot.aer.baselines import WINDOW_SECONDS, Baseline, learn_baseline
from securitybot.aer.decide import (
    OrgAerConfig,
    merge_org_config,
    merged_org_mapping,
)
from securitybot.aer.detect import Anomaly, CounterKey, DetectionEngine
from securitybot.aer.detection_config import DETECTION_KEYS, DetectionConfig, OrgDetectionConfig
from securitybot.aer.events import ActivityEvent
from securitybot.aer.metrics import EVENTS_JUDGED
from securitybot.aer.reference_data import TorList
from securitybot.aer.rules import Rules, load_rules
from securitybot.aer.settings_audit import audit_settings_changes
from securitybot.config import AerConfig
from securitybot.store.db import Database
from securitybot.store.models import utcnow

logger = logging.getLogger(__name__)

# Sessions remembered per user so a reset records which sessions it killed (bounded: a user
# with thousands of sessions is a scraper, and the newest are the ones that matter).
_SESSIONS_PER_USER = 32
# Sessions first seen longer ago than this are not reloaded at start-up (Slack sessions of
# long-idle clients re-authenticate; the engine also caps how many it holds).
_SESSION_LOOKBACK = timedelta(days=30)


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
        return record_decisions(
            session, anomalies, now, cfg=self.cfg, org_config=self.org_config,
            sessions=self._sessions, clock=self.clock(), source=source, refs=refs,
        )  # fmt: skip

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
        return audit_settings_changes(self.db, self.cfg)
