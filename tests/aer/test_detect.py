from __future__ import annotations

import ipaddress
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from securitybot.aer.baselines import learn_baseline
from securitybot.aer.detect import Anomaly, DetectionConfig, DetectionEngine, TorList
from securitybot.aer.events import ActivityEvent
from securitybot.aer.reference_data import DEFAULT_TOR_PATH, EXAMPLE_TOR_PATH
from securitybot.aer.rules import RulesError, load_rules, parse_rules

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
RULES = load_rules()
DESKTOP_UA = "Mozilla/5.0 (Macintosh) AppleWebKit/537.36 Slack_SSB/4.36.140"


def ev(**kw: Any) -> ActivityEvent:
    base: dict[str, Any] = {
        "org": "T0A", "user": "UALICE", "ts": T0, "action": "message_post", "session": "S1",
        "ip": "10.0.0.1", "asn": 7922, "country": "US", "user_agent": DESKTOP_UA,
        "client": "desktop",
    }  # fmt: skip
    base.update(kw)
    return ActivityEvent(**base)


def engine(orgs: dict[str, Any] | None = None, tor: TorList | None = None) -> DetectionEngine:
    return DetectionEngine(DetectionConfig.build(RULES, orgs), tor or TorList(["198.51.100.7"]))


def types(found: list[Anomaly]) -> list[str]:
    return [a.type for a in found]


def run(eng: DetectionEngine, events: list[ActivityEvent]) -> list[Anomaly]:
    return [a for e in events for a in eng.observe(e)]


# --- volume ------------------------------------------------------------------------------


def burst(org: str, n: int, start: datetime = T0) -> list[ActivityEvent]:
    return [ev(org=org, action="file_download", ts=start + timedelta(seconds=i)) for i in range(n)]


def test_same_burst_is_anomalous_only_in_the_org_with_low_history() -> None:
    eng = engine()
    eng.set_baseline(learn_baseline("T0A", "file_download", [150, 200, 250, 300] * 25))
    eng.set_baseline(learn_baseline("T0B", "file_download", [1, 2, 3, 4, 5] * 20))
    assert run(eng, burst("T0A", 200)) == []
    found = run(eng, burst("T0B", 200))
    assert types(found) == ["excessive_downloads"]
    assert found[0].org == "T0B" and found[0].rule == "volume:file_download"


def test_cold_start_uses_the_default_threshold() -> None:
    eng = engine()
    default = RULES.thresholds["file_download"]["default"]
    assert eng.threshold_for("T0A", "file_download") == default
    assert run(eng, burst("T0A", int(default))) == []
    found = eng.observe(ev(action="file_download", ts=T0 + timedelta(minutes=30)))
    assert types(found) == ["excessive_downloads"]
    assert found[0].observed == default + 1 and found[0].threshold == default


def test_volume_fires_once_per_bucket_and_again_in_the_next() -> None:
    eng = engine()
    assert len(run(eng, burst("T0A", 1000))) == 1
    assert len(run(eng, burst("T0A", 1000, T0 + timedelta(hours=1)))) == 1


def test_volume_respects_event_count_and_org_threshold_override() -> None:
    eng = engine({"T0A": {"thresholds": {"export": {"default": 5}}}})
    assert eng.observe(ev(action="export", count=5)) == []
    assert types(eng.observe(ev(action="export", count=1))) == ["excessive_downloads"]


@pytest.mark.parametrize(
    ("action", "kind"),
    [("search", "unexpected_scraping"), ("api_call", "unexpected_api_call_volume"),
     ("file_share", "excessive_file_shares"), ("admin_action", "unexpected_admin_action"),
     ("message_delete", "unexpected_message_deletion")],
)  # fmt: skip
def test_actions_map_to_slack_volume_types(action: str, kind: str) -> None:
    found = engine().observe(ev(action=action, count=100_000))
    assert types(found) == [kind]


def test_unmapped_actions_are_not_counted() -> None:
    eng = engine()
    eng.observe(ev(action="message_post", count=100_000))
    assert eng.drain_counters() == {}


def test_drain_returns_deltas_per_bucket_once() -> None:
    eng = engine()
    run(eng, burst("T0A", 3))
    run(eng, burst("T0A", 2, T0 + timedelta(hours=1)))  # rolls the first bucket over
    eng.observe(ev(action="file_download", ts=T0 + timedelta(minutes=5)))  # late event
    drained = eng.drain_counters()
    assert drained == {
        ("T0A", "UALICE", "file_download", T0): 4,
        ("T0A", "UALICE", "file_download", T0 + timedelta(hours=1)): 2,
    }
    assert eng.drain_counters() == {}
    assert eng.counters_snapshot() == {
        ("T0A", "UALICE", "file_download", T0 + timedelta(hours=1)): 2
    }


def test_seeded_counter_continues_a_burst_after_restart() -> None:
    eng = engine()
    eng.seed_counter("T0A", "UALICE", "file_download", T0, 300)
    assert types(eng.observe(ev(action="file_download"))) == ["excessive_downloads"]
    assert eng.drain_counters() == {("T0A", "UALICE", "file_download", T0): 1}


# --- network heuristics ------------------------------------------------------------------


def test_tor_exit_is_flagged_once_per_session() -> None:
    eng = engine()
    found = run(eng, [ev(ip="198.51.100.7")] * 5)
    assert types(found) == ["tor"]
    assert types(eng.observe(ev(ip="198.51.100.7", session="S2"))) == ["tor"]


def test_tor_list_loads_from_file_and_reload_takes_effect(tmp_path: Path) -> None:
    path = tmp_path / "tor.txt"
    path.write_text("# comment\n192.0.2.1  # inline\n\n")
    tor = TorList.from_file(path)
    eng = engine(tor=tor)
    assert eng.observe(ev(ip="192.0.2.2")) == []
    path.write_text("192.0.2.2\n")
    assert tor.reload() == 1
    assert types(eng.observe(ev(ip="192.0.2.2", session="S9"))) == ["tor"]
    path.write_text("not-an-ip\n")
    with pytest.raises(ValueError, match=r"tor.txt:1"):
        tor.reload()
    assert "192.0.2.2" in tor  # the previous list stays in force


def test_shipped_tor_list_is_empty_and_the_example_is_documentation_addresses() -> None:
    assert len(TorList.from_file(DEFAULT_TOR_PATH)) == 0  # never flags real traffic
    example = TorList.from_file(EXAMPLE_TOR_PATH)
    assert "198.51.100.7" in example
    assert all(ipaddress.ip_address(ip).is_private for ip in example.ips)  # TEST-NETs, 2001:db8


def test_first_event_establishes_then_new_asn_and_country_are_flagged() -> None:
    eng = engine()
    assert eng.observe(ev()) == []
    found = eng.observe(ev(asn=3320, ts=T0 + timedelta(hours=30), country="US"))
    assert [(a.type, a.rule) for a in found] == [("asn", "new_asn")]
    found = eng.observe(ev(asn=3320, country="CA", ts=T0 + timedelta(hours=60)))
    assert [(a.type, a.rule) for a in found] == [("asn", "new_country")]
    assert eng.observe(ev(asn=3320, country="CA", ts=T0 + timedelta(hours=61))) == []


def test_seeded_profile_counts_as_history() -> None:
    eng = engine()
    eng.seed_user_profile("T0A", "UALICE", asns=[7922], countries=["US"])
    assert eng.observe(ev()) == []
    assert types(eng.observe(ev(user="UALICE", asn=1221, session="S2"))) == ["asn"]


def test_cloud_asn_is_flagged_even_on_a_first_event() -> None:
    found = engine().observe(ev(asn=16509))
    assert [(a.type, a.rule, a.observed) for a in found] == [("asn", "cloud_asn", "AS16509")]


@pytest.mark.parametrize("indicators", [["203.0.113.9"], ["203.0.113.0/24"]])
def test_indicator_ip_is_flagged(indicators: list[str]) -> None:
    eng = engine({"T0A": {"indicator_ips": indicators}})
    assert types(eng.observe(ev(ip="203.0.113.9"))) == ["ip_address"]
    assert engine().observe(ev(ip="203.0.113.9")) == []  # another org's list does not apply


def test_impossible_travel_between_countries() -> None:
    eng = engine()
    eng.observe(ev(country="US"))
    found = eng.observe(ev(country="JP", ts=T0 + timedelta(minutes=30), asn=2516))
    kinds = [a.type for a in found]
    assert "impossible_travel" in kinds
    travel = found[kinds.index("impossible_travel")]
    assert travel.observed > 1000 and travel.details["from_country"] == "US"


def test_plausible_travel_is_not_flagged() -> None:
    eng = engine()
    eng.observe(ev(country="US"))
    found = eng.observe(ev(country="JP", ts=T0 + timedelta(hours=20), asn=2516))
    assert "impossible_travel" not in types(found)


def test_travel_uses_coordinates_from_details() -> None:
    eng = engine()
    eng.observe(ev(country=None, details={"lat": 52.52, "lon": 13.40}))  # Berlin
    found = eng.observe(ev(country=None, details={"lat": -33.87, "lon": 151.21},
                           ts=T0 + timedelta(hours=2)))  # fmt: skip
    assert types(found) == ["impossible_travel"]
    near = eng.observe(ev(country=None, details={"lat": -33.9, "lon": 151.2},
                          ts=T0 + timedelta(hours=2, minutes=1)))  # fmt: skip
    assert near == []


@pytest.mark.parametrize(
    "second",
    [
        {"ip": "198.51.100.7"},
        {"asn": 3320},
        {"asn": 16509},
        {"ip": "203.0.113.9"},
        {"country": "JP", "ts": T0 + timedelta(minutes=5)},
    ],
)
@pytest.mark.parametrize(
    "trust",
    [
        {"trusted_asns": ["AS7922", 3320, 16509]},
        {"trusted_cidrs": ["198.51.100.0/24", "203.0.113.0/24", "10.0.0.0/8"]},
    ],
)
def test_trusted_networks_are_never_flagged(second: dict[str, Any], trust: dict[str, Any]) -> None:
    eng = engine({"T0A": {**trust, "indicator_ips": ["203.0.113.9"]}})
    eng.observe(ev())
    nxt = ev(**second)
    if "trusted_asns" in trust and "asn" not in second:
        nxt = replace(nxt, asn=7922)
    if "trusted_cidrs" in trust and "ip" not in second:
        nxt = replace(nxt, ip="10.1.2.3")
    found = eng.observe(nxt)
    assert not {"tor", "asn", "ip_address", "impossible_travel"} & set(types(found))


# --- sessions and user agents ------------------------------------------------------------


@pytest.mark.parametrize("other", ["python-requests/2.31", "Mozilla/5.0 Chrome/119"])
def test_ua_product_change_within_session_is_a_fingerprint_change(other: str) -> None:
    eng = engine()
    eng.observe(ev())
    found = eng.observe(ev(user_agent=other, client=None))
    assert "session_fingerprint" in types(found)


def test_ua_string_change_of_same_product_is_unexpected_user_agent() -> None:
    eng = engine()
    eng.observe(ev())
    found = eng.observe(ev(user_agent=DESKTOP_UA.replace("4.36.140", "4.37.0")))
    assert types(found) == ["unexpected_user_agent"]


def test_client_change_within_session() -> None:
    eng = engine()
    eng.observe(ev(user_agent=None))
    assert types(eng.observe(ev(user_agent=None, client="api"))) == ["unexpected_client"]


def test_new_ua_product_for_a_user_with_history() -> None:
    eng = engine()
    eng.observe(ev())
    found = eng.observe(ev(session="S2", user_agent="Mozilla/5.0 Firefox/120", client="web"))
    assert [(a.type, a.observed) for a in found] == [("user_agent", "Mozilla")]
    assert eng.observe(ev(session="S3", user_agent="Mozilla/5.0 Chrome/119", client="web")) == []
    assert eng.user_profile("T0A", "UALICE") == ({7922}, {"US"}, {"slack-desktop", "Mozilla"})
    assert eng.user_profile("T0A", "UNOBODY") is None


def test_slack_ua_with_wrong_client_is_spoofed() -> None:
    found = engine().observe(ev(client="api"))
    assert [(a.type, a.rule) for a in found] == [("spoofed_user_agent", "slack_ua_client_mismatch")]


def test_scripting_ua_on_desktop_client_is_spoofed() -> None:
    found = engine().observe(ev(user_agent="curl/8.4.0", client="desktop"))
    assert types(found) == ["spoofed_user_agent"]


def test_scripting_ua_on_api_client_is_fine() -> None:
    assert engine().observe(ev(user_agent="curl/8.4.0", client="api")) == []


def test_ordinary_traffic_raises_nothing() -> None:
    eng = engine()
    events = [
        ev(ts=T0 + timedelta(seconds=i), action=a)
        for i, a in enumerate(["message_post", "file_download", "search", "api_call"] * 50)
    ]
    assert run(eng, events) == []


# --- rules file --------------------------------------------------------------------------


def test_rules_file_has_slack_defaults() -> None:
    assert RULES.responses["tor"] == "reset_sessions"
    assert RULES.responses["excessive_downloads"] == "notify_only"
    assert RULES.volume_actions["export"] == "excessive_downloads"


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"volume": {"actions": {"search": "scraping"}}}, r"volume\.actions\.search"),
        ({"thresholds": {"search": {"flor": 1}}}, r"thresholds\.search\.flor: unknown key"),
        ({"thresholds": {"search": {"default": -1}}}, r"thresholds\.search\.default"),
        ({"network": {"cloud_asns": ["ASX"]}}, r"network\.cloud_asns\[0\]"),
        ({"user_agent": {"scripting": ["("]}}, r"user_agent\.scripting\[0\]: invalid"),
        ({"travel": {"max_speed_kmh": 0}}, r"travel\.max_speed_kmh"),
        ({"responses": {"tor": "block"}}, r"responses\.tor"),
        ({"responses": {"dns": "notify_only"}}, r"responses\.dns: unknown anomaly type"),
        ({"extra": 1}, r"\(top level\)\.extra: unknown key"),
    ],
)
def test_rules_errors_name_the_key(data: dict[str, Any], match: str) -> None:
    with pytest.raises(RulesError, match=match):
        parse_rules(data)


def test_load_rules_reports_bad_yaml_with_line(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("volume:\n  actions: [\n")
    with pytest.raises(RulesError, match=r"rules.yaml line \d+: not valid YAML"):
        load_rules(path)


def test_org_detection_config_errors_name_the_org_key() -> None:
    with pytest.raises(RulesError, match=r"aer\.orgs\.T0A\.trusted_cidrs\[0\]"):
        DetectionConfig.build(RULES, {"T0A": {"trusted_cidrs": ["nope"]}})
