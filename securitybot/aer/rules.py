"""The AER rules as data (``alerts/aer_rules.yaml``), loaded and validated once at start-up.

Security teams tune these numbers and lists far more often than the code; keeping them in a
reviewed YAML file makes each change a one-line diff, and validating everything here means a
typo stops the service with the key named instead of silently disabling a heuristic.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from securitybot.aer.baselines import (
    THRESHOLD_KEYS,
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


def as_mapping(value: Any, where: str) -> Mapping[str, Any]:
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
    actions = as_mapping(data.get("actions"), "volume.actions")
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
        layer = as_mapping(layer, where)
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
    for name, spec in as_mapping(data.get("slack_clients"), "user_agent.slack_clients").items():
        where = f"user_agent.slack_clients.{name}"
        spec = as_mapping(spec, where)
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
    data = as_mapping(data, "(top level)")
    _known(data, _TOP_KEYS, "(top level)")
    if data.get("version", 1) != 1:
        raise RulesError("version: only version 1 is supported")
    network = as_mapping(data.get("network"), "network")
    _known(network, frozenset({"cloud_asns"}), "network")
    travel = as_mapping(data.get("travel"), "travel")
    _known(travel, frozenset({"max_speed_kmh", "min_distance_km"}), "travel")
    dedupe = as_mapping(data.get("dedupe"), "dedupe")
    _known(dedupe, frozenset({"window"}), "dedupe")
    scripting, interactive, claims = _user_agent(as_mapping(data.get("user_agent"), "user_agent"))
    return Rules(
        volume_actions=MappingProxyType(_volume(as_mapping(data.get("volume"), "volume"))),
        thresholds=MappingProxyType(_thresholds(as_mapping(data.get("thresholds"), "thresholds"))),
        cloud_asns=parse_asn_list(network.get("cloud_asns"), "network.cloud_asns"),
        scripting_user_agents=scripting,
        interactive_clients=interactive,
        slack_ua_claims=claims,
        max_travel_kmh=_number(travel.get("max_speed_kmh", 1000), "travel.max_speed_kmh"),
        min_travel_km=_number(
            travel.get("min_distance_km", 500), "travel.min_distance_km", minimum=-1
        ),
        dedupe_window=_number(dedupe.get("window", 600), "dedupe.window", minimum=-1),
        responses=MappingProxyType(_responses(as_mapping(data.get("responses"), "responses"))),
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
