"""The AER detection engine: heuristics and per-org volume thresholds over activity events.

Pure and in-memory: the caller feeds parsed events to :meth:`DetectionEngine.observe`, gets
anomalies back, and periodically persists :meth:`DetectionEngine.drain_counters` (hourly
aggregates, never raw events) and re-seeds from them after a restart.

The anomaly catalogue (which heuristic raises which Slack reason name) is in the package
docstring, :mod:`securitybot.aer`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from securitybot.aer.baselines import WINDOW_SECONDS, Baseline, resolve_threshold_config, threshold
from securitybot.aer.detect_state import (
    Anomaly,
    Counter,
    CounterKey,
    Observation,
    OrgState,
    SessionState,
    UserState,
)
from securitybot.aer.detection_config import DetectionConfig, OrgDetectionConfig
from securitybot.aer.events import ActivityEvent
from securitybot.aer.reference_data import COUNTRY_CENTROIDS, TorList, haversine_km

__all__ = [
    "Anomaly",
    "CounterKey",
    "DetectionConfig",
    "DetectionEngine",
    "OrgDetectionConfig",
    "TorList",
]

_TRUSTED, _INDICATOR, _TOR = 1, 2, 4
_IP_CACHE_MAX = 200_000
_UA_CACHE_MAX = 50_000


class DetectionEngine:
    def __init__(
        self, config: DetectionConfig, tor: TorList | None = None, *, max_sessions: int = 500_000
    ) -> None:
        self.config = config
        self.tor = tor or TorList()
        self.max_sessions = max_sessions
        self._rules = config.rules
        self._volume = dict(config.rules.volume_actions)
        self._orgs: dict[str, OrgState] = {}
        self._ua_cache: dict[str, tuple[str, frozenset[str] | None, bool]] = {}
        self._ctx = Observation()
        # Sessions opened or completed since the last drain: (org, sid) -> (user, ua, client).
        self._session_changes: dict[tuple[str, str], tuple[str, str | None, str | None]] = {}

    # --- state hooks --------------------------------------------------------------------

    def _org(self, org: str) -> OrgState:
        st = self._orgs.get(org)
        if st is None:
            st = self._orgs[org] = OrgState(self.config.for_org(org), self._rules)
        return st

    def _user(self, st: OrgState, user: str) -> UserState:
        u = st.users.get(user)
        if u is None:
            u = st.users[user] = UserState()
        return u

    def set_baseline(self, b: Baseline) -> None:
        st = self._org(b.org)
        st.baselines[b.action] = b
        st.thresholds.pop(b.action, None)

    def threshold_for(self, org: str, action: str) -> float:
        st = self._org(org)
        thr = st.thresholds.get(action)
        if thr is None:
            cfg = resolve_threshold_config(action, self._rules.thresholds, st.cfg.thresholds)
            thr = st.thresholds[action] = threshold(st.baselines.get(action), cfg)
        return thr

    def seed_user_profile(
        self,
        org: str,
        user: str,
        asns: Iterable[int] = (),
        countries: Iterable[str] = (),
        ua_products: Iterable[str] = (),
    ) -> None:
        """Restore a persisted profile; the user then counts as having history."""
        u = self._user(self._org(org), user)
        u.asns.update(asns)
        u.countries.update(countries)
        u.families.update(ua_products)
        u.known = True

    def user_profile(self, org: str, user: str) -> tuple[set[int], set[str], set[str]] | None:
        """Copies of a user's seen ASNs, countries and UA products, for the caller to persist."""
        st = self._orgs.get(org)
        u = st.users.get(user) if st else None
        return (set(u.asns), set(u.countries), set(u.families)) if u else None

    def seed_counter(
        self, org: str, user: str, action: str, bucket_start: datetime, n: int
    ) -> None:
        """Restore a persisted count for the live bucket, so a restart does not reset a burst."""
        u = self._user(self._org(org), user)
        bucket = int(bucket_start.timestamp()) // WINDOW_SECONDS * WINDOW_SECONDS
        c = u.counters.get(action)
        if c is None or c.bucket < bucket:
            c = u.counters[action] = Counter(bucket)
        if c.bucket == bucket:
            c.total += n
            c.flushed += n  # already persisted: not a delta to write back
            c.fired = c.fired or c.total > self.threshold_for(org, action)

    def seed_session(self, org: str, sid: str, user_agent: str | None, client: str | None) -> None:
        """Restore a persisted session's first user agent and client (after a restart)."""
        st = self._org(org)
        family = self._family(user_agent) if user_agent is not None else None
        st.sessions[sid] = SessionState(user_agent, family, client)

    def drain_sessions(self) -> dict[tuple[str, str], tuple[str, str | None, str | None]]:
        """Sessions opened (or whose first UA/client arrived) since the last drain, to persist."""
        out, self._session_changes = self._session_changes, {}
        return out

    def counters_snapshot(self) -> dict[CounterKey, int]:
        """Live in-bucket totals (what thresholds are compared against)."""
        return {
            (org, user, action, datetime.fromtimestamp(c.bucket, UTC)): c.total
            for org, st in self._orgs.items()
            for user, u in st.users.items()
            for action, c in u.counters.items()
            if c.total
        }

    def drain_counters(self) -> dict[CounterKey, int]:
        """Counts added since the last drain, per hour bucket, for the caller to add to SQL."""
        out: dict[CounterKey, int] = {}
        for org, st in self._orgs.items():
            for (user, action, bucket), n in st.pending.items():
                out[(org, user, action, datetime.fromtimestamp(bucket, UTC))] = n
            st.pending.clear()
            for user, u in st.users.items():
                for action, c in u.counters.items():
                    if c.total > c.flushed:
                        key = (org, user, action, datetime.fromtimestamp(c.bucket, UTC))
                        out[key] = out.get(key, 0) + c.total - c.flushed
                        c.flushed = c.total
        return out

    # --- detection ----------------------------------------------------------------------

    def observe(self, ev: ActivityEvent, *, learn: bool = False) -> list[Anomaly]:
        """Update state with one event and return the anomalies it raises (usually none).

        ``learn=True`` is for history (a back-fill, events older than the live window): the
        event updates counters, profiles, sessions and location exactly as a live one would,
        but raises nothing, because judging the past against a baseline still being learned
        only produces false alarms about things nobody can stop any more.
        """
        st = self._orgs.get(ev.org) or self._org(ev.org)
        u = st.users.get(ev.user) or self._user(st, ev.user)
        ts = ev.ts.timestamp()
        c = self._ctx  # not re-entrant: one engine per thread
        c.ev, c.st, c.u, c.ts, c.learn = ev, st, u, ts, learn
        out = c.out = []
        ip, asn, country = ev.ip, ev.asn, ev.country
        trusted = asn is not None and asn in st.trusted_asns
        flags = 0
        if ip is not None and not trusted:
            if st.tor_version != self.tor.version:
                st.ipcache.clear()
                st.tor_version = self.tor.version
            cached = st.ipcache.get(ip)
            flags = self._classify(st, ip) if cached is None else cached
            trusted = flags & _TRUSTED != 0
        if not trusted:
            if flags:
                if flags & _TOR:
                    self._emit(c, "tor", "tor_exit_node", ip or "", None, {})
                if flags & _INDICATOR:
                    self._emit(c, "ip_address", "indicator_ip", ip or "", None, {})
            if (asn is not None and asn not in u.asns) or (
                country is not None and country not in u.countries
            ):
                self._profile(c)
            if ev.details or (country is not None and country != u.loc_country):
                self._travel(c)
            elif country is not None and ts > u.loc_ts:
                u.loc_ts = ts
        ua = ev.user_agent
        if ua is not None:
            info = self._ua_cache.get(ua) or self._analyse_ua(ua)
            if info[0] not in u.families:
                if u.known and u.families:  # a seeded profile may predate UA tracking
                    self._emit(c, "user_agent", "new_ua_product", info[0], None, {})
                u.families.add(info[0])
            client = ev.client
            if client is not None and (info[1] is not None or info[2]):
                self._spoof(c, info)
        sid = ev.session
        if sid is not None:
            s = st.sessions.get(sid)
            if s is None:
                self._new_session(st, sid, ev)
            elif (ua is not None and ua != s.user_agent) or (
                ev.client is not None and ev.client != s.client
            ):
                self._session_change(c, s)
        kind = self._volume.get(ev.action)
        if kind is not None:
            self._count(c, kind)
        u.known = True
        return out

    def _classify(self, st: OrgState, ip: str) -> int:
        # Parsing an address and scanning CIDRs is the slowest step; each IP pays it once per
        # org (until the Tor list reloads) and every later event is one dict lookup.
        addr = ipaddress.ip_address(ip)
        cfg, flags = st.cfg, 0
        if any(addr in net for net in cfg.trusted_cidrs):
            flags |= _TRUSTED
        if ip in cfg.indicator_ips or any(addr in net for net in cfg.indicator_cidrs):
            flags |= _INDICATOR
        if ip in self.tor.ips:
            flags |= _TOR
        if len(st.ipcache) >= _IP_CACHE_MAX:
            st.ipcache.clear()
        st.ipcache[ip] = flags
        return flags

    def _analyse_ua(self, ua: str) -> tuple[str, frozenset[str] | None, bool]:
        # The "product": the Slack app the UA claims to be, else its first token ("Mozilla",
        # "curl"), so browser and desktop-app versions of the same user are told apart.
        match = next((c for c in self._rules.slack_ua_claims if c.pattern.search(ua)), None)
        claim = match.clients if match else None
        family = f"slack-{match.name}" if match else ua.split("/", 1)[0].split(" ", 1)[0][:64]
        scripting = any(p.search(ua) for p in self._rules.scripting_user_agents)
        if len(self._ua_cache) >= _UA_CACHE_MAX:
            self._ua_cache.clear()
        info = self._ua_cache[ua] = (family, claim, scripting)
        return info

    def _family(self, ua: str) -> str:
        return (self._ua_cache.get(ua) or self._analyse_ua(ua))[0]

    def _emit(
        self,
        c: Observation,
        kind: str,
        rule: str,
        seen: float | str,
        limit: float | str | None,
        d: Any,
    ) -> None:
        if c.learn:
            return  # history: neither an anomaly nor a dedupe entry that would mute a live one
        ev, u, ts = c.ev, c.u, c.ts
        key = f"{kind}|{rule}|{ev.session or ev.ip or ''}"
        last = u.recent.get(key)
        window = self._rules.dedupe_window
        if last is not None and 0 <= ts - last < window:
            return
        if len(u.recent) > 64:
            u.recent = {k: t for k, t in u.recent.items() if ts - t < window}
        u.recent[key] = ts
        c.out.append(
            Anomaly(ev.org, ev.user, kind, ev.session, ev.ts, rule, seen, limit, ev.ip,
                    ev.asn, ev.country, ev.user_agent, dict(d))
        )  # fmt: skip

    def _profile(self, c: Observation) -> None:
        ev, u = c.ev, c.u
        asn, country = ev.asn, ev.country
        new_asn = asn is not None and asn not in u.asns
        new_country = country is not None and country not in u.countries
        details = {"new_asn": new_asn, "new_country": new_country}
        if new_asn and asn in c.st.cloud:
            self._emit(c, "asn", "cloud_asn", f"AS{asn}", None, details)
        elif u.known and new_country:
            self._emit(c, "asn", "new_country", country or "", None, details)
        elif u.known and new_asn:
            self._emit(c, "asn", "new_asn", f"AS{asn}", None, details)
        if asn is not None:
            u.asns.add(asn)
        if country is not None:
            u.countries.add(country)

    def _travel(self, c: Observation) -> None:
        ev, u, ts = c.ev, c.u, c.ts
        lat, lon = ev.details.get("lat"), ev.details.get("lon")
        if not (
            isinstance(lat, int | float) and isinstance(lon, int | float)
            and -90 <= lat <= 90 and -180 <= lon <= 180
        ):  # fmt: skip
            if ev.country is None:
                return
            lat, lon = COUNTRY_CENTROIDS.get(ev.country, (None, None))
        if lat is None or lon is None:
            u.loc_country, u.loc_lat, u.loc_lon, u.loc_ts = ev.country, None, None, ts
            return
        if u.loc_lat is not None and u.loc_lon is not None:
            km = haversine_km(u.loc_lat, u.loc_lon, float(lat), float(lon))
            seconds = abs(ts - u.loc_ts)
            # Floor the interval at a minute: two events in the same second are not infinitely
            # fast, and clock jitter between sources is of that order.
            kmh = km / (max(seconds, 60.0) / 3600.0)
            if km >= self._rules.min_travel_km and kmh > self._rules.max_travel_kmh:
                details = {
                    "from_country": u.loc_country, "to_country": ev.country,
                    "distance_km": round(km), "seconds": round(seconds),
                }  # fmt: skip
                limit = self._rules.max_travel_kmh
                self._emit(c, "impossible_travel", "speed", round(kmh), limit, details)
        if ts >= u.loc_ts:
            u.loc_country, u.loc_lat, u.loc_lon, u.loc_ts = ev.country, float(lat), float(lon), ts

    def _spoof(self, c: Observation, info: tuple[str, frozenset[str] | None, bool]) -> None:
        client = c.ev.client or ""
        if info[1] is not None and client not in info[1]:
            claimed = ",".join(sorted(info[1]))
            self._emit(c, "spoofed_user_agent", "slack_ua_client_mismatch", client, claimed, {})
        elif info[2] and client in self._rules.interactive_clients:
            self._emit(c, "spoofed_user_agent", "scripting_ua_on_app", client, None, {})

    def _new_session(self, st: OrgState, sid: str, ev: ActivityEvent) -> None:
        if len(st.sessions) >= self.max_sessions:
            # Keep the newer half: amortised O(1), and old sessions are the ones long gone.
            keep = islice(st.sessions.items(), len(st.sessions) // 2, None)
            st.sessions = dict(keep)
        ua = ev.user_agent
        family = self._family(ua) if ua is not None else None
        st.sessions[sid] = SessionState(ua, family, ev.client)
        if ua is not None or ev.client is not None:  # else nothing to compare later events with
            self._session_changes[(ev.org, sid)] = (ev.user, ua, ev.client)

    def _session_change(self, c: Observation, s: SessionState) -> None:
        ev = c.ev
        ua, client = ev.user_agent, ev.client
        if (ua is not None and s.user_agent is None) or (client is not None and s.client is None):
            ua_, client_ = s.user_agent or ua, s.client or client  # what this call will store
            self._session_changes[(ev.org, ev.session or "")] = (ev.user, ua_, client_)
        if ua is not None and ua != s.user_agent:
            if s.user_agent is None:
                s.user_agent, s.family = ua, self._family(ua)
            else:
                same = self._family(ua) == s.family
                kind = "unexpected_user_agent" if same else "session_fingerprint"
                d = {"session_user_agent": s.user_agent}
                self._emit(c, kind, "session_ua_changed", ua, s.user_agent, d)
        if client is not None and client != s.client:
            if s.client is None:
                s.client = client
            else:
                d = {"session_client": s.client}
                self._emit(c, "unexpected_client", "session_client_changed", client, s.client, d)

    def _count(self, c: Observation, kind: str) -> None:
        ev, st, action = c.ev, c.st, c.ev.action
        bucket = int(c.ts) // WINDOW_SECONDS * WINDOW_SECONDS
        n = c.u.counters.get(action)
        if n is None:
            n = c.u.counters[action] = Counter(bucket)
        elif bucket != n.bucket:
            if bucket < n.bucket:
                # Late event for a closed bucket: persist it, but that hour was already judged.
                key = (ev.user, action, bucket)
                st.pending[key] = st.pending.get(key, 0) + ev.count
                return
            if n.total > n.flushed:
                key = (ev.user, action, n.bucket)
                st.pending[key] = st.pending.get(key, 0) + n.total - n.flushed
            n.bucket, n.total, n.flushed, n.fired = bucket, 0, 0, False
        n.total += ev.count
        if n.fired or c.learn:
            return  # learned counts still count toward the hour a live event is judged in
        thr = st.thresholds.get(action)
        if thr is None:
            thr = self.threshold_for(ev.org, action)
        if n.total > thr:
            n.fired = True
            d = {"action": action, "bucket_start": bucket, "window_seconds": WINDOW_SECONDS}
            c.out.append(
                Anomaly(ev.org, ev.user, kind, ev.session, ev.ts, f"volume:{action}", n.total,
                        thr, ev.ip, ev.asn, ev.country, ev.user_agent, d)
            )  # fmt: skip
