"""The AER rules as data (``alerts/aer_rules.yaml``), loaded and validated once at start-up.

Security teams tune these numbers and lists far more often than the code; keeping them in a
reviewed YAML file makes each change a one-line diff, and validating everything here means a
typo stops the service with the key named instead of silently disabling a heuristic.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from securitybot.aer.baselines import (
    THRESHOLD_KEYS,
    check_threshold_layers,
    resolve_threshold_config,
)
from securitybot.shipped import ALERTS_DIR

DEFAULT_RULES_PATH = ALERTS_DIR / "aer_rules.yaml"

# Slack's audit-log anomaly reason names, so reports line up with Slack's own AER events.
ANOMALY_TYPES = frozenset(
    {
        "tor",
        "asn",
        "ip_address",
        "session_fingerprint",
        "user_agent",
        "unexpected_user_agent",
        "spoofed_user_agent",
        "unexpected_client",
        "excessive_downloads",
        "excessive_file_shares",
        "unexpected_scraping",
        "unexpected_api_call_volume",
        "unexpected_admin_action",
        "unexpected_message_deletion",
        "impossible_travel",
    }
)
VOLUME_TYPES = frozenset(
    {
        "excessive_downloads",
        "excessive_file_shares",
        "unexpected_scraping",
        "unexpected_api_call_volume",
        "unexpected_admin_action",
        "unexpected_message_deletion",
    }
)
# Trusted ASNs/CIDRs suppress exactly these: they are about *where* a request came from.
NETWORK_TYPES = frozenset({"tor", "asn", "ip_address", "impossible_travel"})
RESPONSE_ACTIONS = ("reset_sessions", "ask_user", "notify_only")
_TOP_KEYS = frozenset(
    {"version", "volume", "thresholds", "network", "user_agent", "travel", "dedupe", "responses"}
)


class RulesError(ValueError):
    """The rules file is invalid; the message names the key."""


@dataclass(frozen=True, slots=True)
class UaClaim:
    """A user-agent pattern that claims to be a Slack client, and the clients allowed to send it."""

    name: str
    pattern: re.Pattern[str]
    clients: frozenset[str]


@dataclass(frozen=True, slots=True)
class Rules:
    volume_actions: Mapping[str, str]
    thresholds: Mapping[str, Mapping[str, float]]
    cloud_asns: frozenset[int]
    scripting_user_agents: tuple[re.Pattern[str], ...]
    interactive_clients: frozenset[str]
    slack_ua_claims: tuple[UaClaim, ...]
    max_travel_kmh: float
    min_travel_km: float
    dedupe_window: float
    responses: Mapping[str, str]


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise RulesError(f"{where}: must be a mapping")
    return value


def _known(data: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    for key in data:
        if key not in allowed:
            raise RulesError(f"{where}.{key}: unknown key")


def _number(value: Any, where: str, *, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RulesError(f"{where}: must be a number")
    if value <= minimum:
        raise RulesError(f"{where}: must be greater than {minimum:g}")
    return float(value)


def _regex(value: Any, where: str) -> re.Pattern[str]:
    if not isinstance(value, str) or not value:
        raise RulesError(f"{where}: must be a non-empty regular expression string")
    try:
        return re.compile(value)
    except re.error as exc:
        raise RulesError(f"{where}: invalid regular expression: {exc}") from None


def parse_asn_list(value: Any, where: str) -> frozenset[int]:
    """ASNs given as integers or 'AS123' strings; shared with per-org config parsing."""
    if value is None:
        return frozenset()
    if not isinstance(value, list | tuple | set | frozenset):
        raise RulesError(f"{where}: must be a list of AS numbers")
    out: set[int] = set()
    for i, item in enumerate(value):
        raw = item[2:] if isinstance(item, str) and item[:2].upper() == "AS" else item
        if isinstance(raw, str) and raw.isdigit():
            raw = int(raw)
        if isinstance(raw, bool) or not isinstance(raw, int) or raw <= 0:
            raise RulesError(f"{where}[{i}]: {item!r} is not an AS number")
        out.add(raw)
    return frozenset(out)


def _str_list(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise RulesError(f"{where}: must be a list of strings")
    return list(value)


def _volume(data: Mapping[str, Any]) -> dict[str, str]:
    _known(data, frozenset({"actions"}), "volume")
    actions = _mapping(data.get("actions"), "volume.actions")
    out: dict[str, str] = {}
    for action, kind in actions.items():
        if kind not in VOLUME_TYPES:
            raise RulesError(
                f"volume.actions.{action}: {kind!r} is not a volume anomaly type "
                f"({', '.join(sorted(VOLUME_TYPES))})"
            )
        out[str(action)] = kind
    return out


def _thresholds(data: Mapping[str, Any]) -> dict[str, Mapping[str, float]]:
    out: dict[str, Mapping[str, float]] = {}
    for action, layer in data.items():
        where = f"thresholds.{action}"
        layer = _mapping(layer, where)
        _known(layer, THRESHOLD_KEYS, where)
        out[str(action)] = MappingProxyType(dict(layer))
    try:
        for action in out:
            resolve_threshold_config(action, out, {})
    except ValueError as exc:
        raise RulesError(str(exc)) from None
    return out


def _user_agent(
    data: Mapping[str, Any],
) -> tuple[tuple[re.Pattern[str], ...], frozenset[str], tuple[UaClaim, ...]]:
    _known(data, frozenset({"scripting", "interactive_clients", "slack_clients"}), "user_agent")
    scripting = tuple(
        _regex(p, f"user_agent.scripting[{i}]")
        for i, p in enumerate(_str_list(data.get("scripting", []), "user_agent.scripting"))
    )
    interactive = frozenset(
        _str_list(data.get("interactive_clients", []), "user_agent.interactive_clients")
    )
    claims: list[UaClaim] = []
    for name, spec in _mapping(data.get("slack_clients"), "user_agent.slack_clients").items():
        where = f"user_agent.slack_clients.{name}"
        spec = _mapping(spec, where)
        _known(spec, frozenset({"pattern", "clients"}), where)
        clients = frozenset(_str_list(spec.get("clients"), f"{where}.clients"))
        claims.append(UaClaim(str(name), _regex(spec.get("pattern"), f"{where}.pattern"), clients))
    return scripting, interactive, tuple(claims)


def _responses(data: Mapping[str, Any]) -> dict[str, str]:
    default = data.get("default", "notify_only")
    if default not in RESPONSE_ACTIONS:
        raise RulesError(f"responses.default: must be one of {', '.join(RESPONSE_ACTIONS)}")
    out = dict.fromkeys(sorted(ANOMALY_TYPES), default)
    for kind, action in data.items():
        if kind == "default":
            continue
        if kind not in ANOMALY_TYPES:
            raise RulesError(f"responses.{kind}: unknown anomaly type")
        if action not in RESPONSE_ACTIONS:
            raise RulesError(f"responses.{kind}: must be one of {', '.join(RESPONSE_ACTIONS)}")
        out[kind] = action
    return out


def parse_rules(data: Any) -> Rules:
    """Validate already-decoded YAML. Every error names the dotted key."""
    data = _mapping(data, "(top level)")
    _known(data, _TOP_KEYS, "(top level)")
    if data.get("version", 1) != 1:
        raise RulesError("version: only version 1 is supported")
    network = _mapping(data.get("network"), "network")
    _known(network, frozenset({"cloud_asns"}), "network")
    travel = _mapping(data.get("travel"), "travel")
    _known(travel, frozenset({"max_speed_kmh", "min_distance_km"}), "travel")
    dedupe = _mapping(data.get("dedupe"), "dedupe")
    _known(dedupe, frozenset({"window"}), "dedupe")
    scripting, interactive, claims = _user_agent(_mapping(data.get("user_agent"), "user_agent"))
    return Rules(
        volume_actions=MappingProxyType(_volume(_mapping(data.get("volume"), "volume"))),
        thresholds=MappingProxyType(_thresholds(_mapping(data.get("thresholds"), "thresholds"))),
        cloud_asns=parse_asn_list(network.get("cloud_asns"), "network.cloud_asns"),
        scripting_user_agents=scripting,
        interactive_clients=interactive,
        slack_ua_claims=claims,
        max_travel_kmh=_number(travel.get("max_speed_kmh", 1000), "travel.max_speed_kmh"),
        min_travel_km=_number(
            travel.get("min_distance_km", 500), "travel.min_distance_km", minimum=-1
        ),
        dedupe_window=_number(dedupe.get("window", 600), "dedupe.window", minimum=-1),
        responses=MappingProxyType(_responses(_mapping(data.get("responses"), "responses"))),
    )


def load_rules(path: str | Path = DEFAULT_RULES_PATH) -> Rules:
    """Read and validate the rules file; raises :class:`RulesError` naming the file and key."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RulesError(f"{p}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise RulesError(f"{p}{where}: not valid YAML") from None
    try:
        return parse_rules(data)
    except RulesError as exc:
        raise RulesError(f"{p}: {exc}") from None


# --- per-organisation detection settings (aer.orgs.<org> in config.yaml) -------------------

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
DETECTION_KEYS = frozenset(
    {"trusted_asns", "trusted_cidrs", "indicator_ips", "cloud_asns", "thresholds"}
)


def parse_cidrs(value: Any, where: str) -> tuple[IPNetwork, ...]:
    """CIDR ranges (a bare IP is a /32 or /128); shared with the decision config."""
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise RulesError(f"{where}: must be a list of CIDR ranges")
    out: list[IPNetwork] = []
    for i, item in enumerate(value):
        try:
            out.append(ipaddress.ip_network(str(item).strip(), strict=False))
        except ValueError:
            raise RulesError(f"{where}[{i}]: {item!r} is not an IP address or CIDR range") from None
    return tuple(out)


@dataclass(frozen=True, slots=True)
class OrgDetectionConfig:
    trusted_asns: frozenset[int] = frozenset()
    trusted_cidrs: tuple[IPNetwork, ...] = ()
    indicator_ips: frozenset[str] = frozenset()
    indicator_cidrs: tuple[IPNetwork, ...] = ()
    # None: the rules file's list. An org with its own cloud footprint replaces it.
    cloud_asns: frozenset[int] | None = None
    thresholds: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None, where: str) -> OrgDetectionConfig:
        """Read the detection keys of one org's AER config; other keys belong to decide.py."""
        data = _mapping(data, where)
        indicators = parse_cidrs(data.get("indicator_ips"), f"{where}.indicator_ips")
        thresholds = _mapping(data.get("thresholds"), f"{where}.thresholds")
        try:
            check_threshold_layers(thresholds, f"{where}.thresholds")
        except ValueError as exc:
            raise RulesError(str(exc)) from None
        cloud = data.get("cloud_asns")
        return cls(
            trusted_asns=parse_asn_list(data.get("trusted_asns"), f"{where}.trusted_asns"),
            trusted_cidrs=parse_cidrs(data.get("trusted_cidrs"), f"{where}.trusted_cidrs"),
            # Single addresses go to a set (O(1) per event); only real ranges need a scan.
            indicator_ips=frozenset(
                str(n.network_address) for n in indicators if n.num_addresses == 1
            ),
            indicator_cidrs=tuple(n for n in indicators if n.num_addresses > 1),
            cloud_asns=None if cloud is None else parse_asn_list(cloud, f"{where}.cloud_asns"),
            thresholds=MappingProxyType({str(k): v for k, v in thresholds.items()}),
        )


@dataclass(frozen=True, slots=True)
class DetectionConfig:
    rules: Rules
    orgs: Mapping[str, OrgDetectionConfig] = field(default_factory=dict)

    @classmethod
    def build(
        cls, rules: Rules, orgs: Mapping[str, Mapping[str, Any] | None] | None = None
    ) -> DetectionConfig:
        parsed = {
            org: OrgDetectionConfig.from_mapping(data, f"aer.orgs.{org}")
            for org, data in (orgs or {}).items()
        }
        return cls(rules, MappingProxyType(parsed))

    def for_org(self, org: str) -> OrgDetectionConfig:
        return self.orgs.get(org) or _EMPTY_ORG


_EMPTY_ORG = OrgDetectionConfig()


# --- reference data: Tor exits and country centroids ------------------------------------

DEFAULT_TOR_PATH = DEFAULT_RULES_PATH.parent / "tor_exit_nodes.txt"  # shipped empty
EXAMPLE_TOR_PATH = DEFAULT_RULES_PATH.parent / "tor_exit_nodes.example.txt"  # tests and demos

# Approximate country centroids (lat, lon): enough to tell Berlin from Sydney when the event
# carries only a country. Events with details.lat/lon are more precise and take precedence.
COUNTRY_CENTROIDS: dict[str, tuple[float, float]] = {
    "US": (39.8, -98.6), "CA": (56.1, -106.3), "MX": (23.6, -102.6), "BR": (-14.2, -51.9),
    "AR": (-38.4, -63.6), "GB": (54.0, -2.0), "IE": (53.4, -8.2), "FR": (46.6, 2.2),
    "DE": (51.2, 10.5), "NL": (52.1, 5.3), "BE": (50.5, 4.5), "ES": (40.5, -3.7),
    "PT": (39.4, -8.2), "IT": (41.9, 12.6), "CH": (46.8, 8.2), "SE": (60.1, 18.6),
    "NO": (60.5, 8.5), "FI": (61.9, 25.7), "DK": (56.3, 9.5), "PL": (51.9, 19.1),
    "RU": (61.5, 105.3), "UA": (48.4, 31.2), "TR": (39.0, 35.2), "IL": (31.0, 34.9),
    "AE": (23.4, 53.8), "IN": (20.6, 79.0), "CN": (35.9, 104.2), "JP": (36.2, 138.3),
    "KR": (35.9, 127.8), "SG": (1.35, 103.8), "AU": (-25.3, 133.8), "NZ": (-40.9, 174.9),
    "ZA": (-30.6, 22.9), "NG": (9.1, 8.7), "EG": (26.8, 30.8),
}  # fmt: skip


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(a)))


class TorList:
    """The Tor exit set. ``version`` changes on reload so engines drop cached IP verdicts."""

    __slots__ = ("ips", "path", "version")

    def __init__(self, ips: Iterable[str] = (), path: Path | None = None) -> None:
        self.ips: frozenset[str] = frozenset(ips)
        self.path = path
        self.version = 0

    @classmethod
    def from_file(cls, path: str | Path) -> TorList:
        tor = cls(path=Path(path))
        tor.reload()
        return tor

    def reload(self) -> int:
        """Re-read the file; on error the previous list stays in force and the error propagates."""
        if self.path is None:
            raise ValueError("this TorList was not loaded from a file")
        ips: set[str] = set()
        for n, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            try:
                ips.add(str(ipaddress.ip_address(text)))
            except ValueError:
                raise ValueError(f"{self.path}:{n}: {text!r} is not an IP address") from None
        self.ips = frozenset(ips)
        self.version += 1
        return len(ips)

    def replace(self, ips: Iterable[str]) -> None:
        """Swap in a new set in one assignment; engines see the new version and re-classify."""
        self.ips = frozenset(ips)
        self.version += 1

    def __contains__(self, ip: object) -> bool:
        return ip in self.ips

    def __len__(self) -> int:
        return len(self.ips)
