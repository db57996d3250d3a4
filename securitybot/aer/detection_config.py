"""Per-organisation detection settings (``aer.orgs.<org>`` in config.yaml, over ``aer.defaults``):
trusted networks, indicator IPs, cloud ASNs and threshold layers, validated like the rules."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from securitybot.aer.baselines import check_threshold_layers
from securitybot.aer.rules import Rules, RulesError, as_mapping, parse_asn_list

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
        data = as_mapping(data, where)
        indicators = parse_cidrs(data.get("indicator_ips"), f"{where}.indicator_ips")
        thresholds = as_mapping(data.get("thresholds"), f"{where}.thresholds")
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
