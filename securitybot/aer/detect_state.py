"""What the AER detection engine remembers per org, user and session (pure data), and the
anomalies it raises. The engine itself is :mod:`securitybot.aer.detect`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from securitybot.aer.baselines import Baseline
from securitybot.aer.detection_config import OrgDetectionConfig
from securitybot.aer.events import ActivityEvent
from securitybot.aer.rules import Rules


@dataclass(frozen=True, slots=True)
class Anomaly:
    org: str
    user: str
    type: str
    session: str | None
    ts: datetime
    rule: str
    observed: float | str
    threshold: float | str | None
    ip: str | None
    asn: int | None
    country: str | None
    user_agent: str | None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True, eq=False)
class Counter:
    bucket: int
    total: int = 0
    flushed: int = 0
    fired: bool = False


@dataclass(slots=True, eq=False)
class UserState:
    asns: set[int] = field(default_factory=set)
    countries: set[str] = field(default_factory=set)
    families: set[str] = field(default_factory=set)
    known: bool = False
    loc_country: str | None = None
    loc_lat: float | None = None
    loc_lon: float | None = None
    loc_ts: float = 0.0
    counters: dict[str, Counter] = field(default_factory=dict)
    recent: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True, eq=False)
class SessionState:
    user_agent: str | None
    family: str | None
    client: str | None


class OrgState:
    __slots__ = (
        "baselines", "cfg", "cloud", "ipcache", "pending", "sessions", "thresholds",
        "tor_version", "trusted_asns", "users",
    )  # fmt: skip

    def __init__(self, cfg: OrgDetectionConfig, rules: Rules) -> None:
        self.cfg = cfg
        self.cloud = rules.cloud_asns if cfg.cloud_asns is None else cfg.cloud_asns
        self.trusted_asns = cfg.trusted_asns
        self.users: dict[str, UserState] = {}
        self.sessions: dict[str, SessionState] = {}
        self.ipcache: dict[str, int] = {}
        self.thresholds: dict[str, float] = {}
        self.baselines: dict[str, Baseline] = {}
        # Deltas of buckets that rolled over (or late events) since the last drain.
        self.pending: dict[tuple[str, str, int], int] = {}
        self.tor_version = -1


class Observation:
    """The event being observed, shared by the slow-path helpers (one per engine, reused)."""

    __slots__ = ("ev", "learn", "out", "st", "ts", "u")
    ev: ActivityEvent
    learn: bool
    st: OrgState
    u: UserState
    ts: float
    out: list[Anomaly]


CounterKey = tuple[str, str, str, datetime]  # (org, user, action, bucket_start)
