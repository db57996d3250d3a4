from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from securitybot.aer.decide import (
    Action,
    AerConfigError,
    Decision,
    OrgAerConfig,
    UserHistory,
    Verdict,
    decide,
    merge_org_config,
    merged_org_mapping,
)
from securitybot.aer.detect import Anomaly
from securitybot.aer.detection_config import DetectionConfig
from securitybot.aer.rules import ANOMALY_TYPES, load_rules

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
DEFAULTS = OrgAerConfig()
NO_HISTORY = UserHistory()


def anomaly(kind: str = "tor", session: str | None = "S2", user: str = "UALICE") -> Anomaly:
    return Anomaly("T0A", user, kind, session, NOW, "rule", "x", None, "198.51.100.7", None,
                   "US", None, {})  # fmt: skip


def reset_ago(minutes: float, sessions: frozenset[str] = frozenset({"S1"})) -> UserHistory:
    return UserHistory(last_reset_at=NOW - timedelta(minutes=minutes), reset_sessions=sessions)


# --- defaults ----------------------------------------------------------------------------


def test_defaults_reset_on_tor() -> None:
    d = decide(anomaly("tor"), DEFAULTS, NO_HISTORY, NOW)
    assert (d.verdict, d.action) == (Verdict.RESET, Action.RESET_SESSIONS)


def test_defaults_reset_on_scraping() -> None:
    d = decide(anomaly("unexpected_scraping"), DEFAULTS, NO_HISTORY, NOW)
    assert d.verdict is Verdict.RESET


@pytest.mark.parametrize("kind", sorted(ANOMALY_TYPES - {"tor", "unexpected_scraping"}))
def test_defaults_notify_for_everything_else(kind: str) -> None:
    d = decide(anomaly(kind), DEFAULTS, NO_HISTORY, NOW)
    assert (d.verdict, d.action) == (Verdict.NOTIFY, Action.NOTIFY_ONLY)
    assert "notify_only" in d.reason


def test_rules_file_defaults_match_the_builtin_ones() -> None:
    assert merge_org_config(None, None, rules=load_rules()).responses == DEFAULTS.responses


# --- order of checks ---------------------------------------------------------------------


def test_disabled_org_does_nothing() -> None:
    d = decide(anomaly(), replace(DEFAULTS, enabled=False), NO_HISTORY, NOW)
    assert (d.verdict, d.action) == (Verdict.DISABLED, None)


def test_excluded_user_is_recorded_not_acted_on() -> None:
    cfg = replace(DEFAULTS, excluded_users=frozenset({"UALICE"}))
    d = decide(anomaly(), cfg, NO_HISTORY, NOW)
    assert (d.verdict, d.action) == (Verdict.EXCLUDED, None)
    assert "excluded" in d.reason


def test_excluded_group_is_recorded_not_acted_on() -> None:
    cfg = replace(DEFAULTS, excluded_groups=frozenset({"S0BREAKGLASS"}))
    history = UserHistory(user_groups=frozenset({"S0BREAKGLASS", "S0ENG"}))
    d = decide(anomaly(), cfg, history, NOW)
    assert d.verdict is Verdict.EXCLUDED and "S0BREAKGLASS" in d.reason


def test_anomaly_from_an_already_reset_session_is_a_duplicate() -> None:
    d = decide(anomaly(session="S1"), DEFAULTS, reset_ago(2), NOW)
    assert (d.verdict, d.action) == (Verdict.DUPLICATE, None)
    assert "S1 was already reset" in d.reason


def test_anomaly_from_an_already_escalated_session_is_a_duplicate() -> None:
    history = replace(reset_ago(5), escalated_sessions=frozenset({"S2"}))
    assert decide(anomaly(session="S2"), DEFAULTS, history, NOW).verdict is Verdict.DUPLICATE


def test_ask_user_response() -> None:
    cfg = replace(DEFAULTS, responses={"tor": Action.ASK_USER})
    d = decide(anomaly(), cfg, NO_HISTORY, NOW)
    assert (d.verdict, d.action) == (Verdict.ASK_USER, Action.ASK_USER)


# --- persistence and cool-down -----------------------------------------------------------


def test_new_session_soon_after_a_reset_escalates_instead_of_resetting() -> None:
    d = decide(anomaly(session="S2"), DEFAULTS, reset_ago(10), NOW)
    assert d.verdict is Verdict.ESCALATE_PERSISTENCE
    assert d.action is Action.NOTIFY_ONLY
    assert "persistence after reset at 2024-05-01T11:50:00+00:00" in d.reason
    assert d.configured is Action.RESET_SESSIONS


def test_after_the_persistence_window_a_new_session_is_reset_again() -> None:
    d = decide(anomaly(session="S2"), DEFAULTS, reset_ago(61), NOW)
    assert d.verdict is Verdict.RESET


def test_session_less_anomaly_within_cooldown_notifies_without_reset() -> None:
    d = decide(anomaly(session=None), DEFAULTS, reset_ago(10), NOW)
    assert (d.verdict, d.action) == (Verdict.COOLDOWN, Action.NOTIFY_ONLY)
    assert "cool-down" in d.reason


def test_cooldown_longer_than_persistence_window_bounds_resets() -> None:
    cfg = replace(DEFAULTS, persistence_window=3600, cooldown=86400)
    assert decide(anomaly(), cfg, reset_ago(120), NOW).verdict is Verdict.COOLDOWN
    assert decide(anomaly(), cfg, reset_ago(25 * 60), NOW).verdict is Verdict.RESET


def test_persistence_is_checked_before_cooldown() -> None:
    cfg = replace(DEFAULTS, persistence_window=3600, cooldown=86400)
    assert decide(anomaly(), cfg, reset_ago(5), NOW).verdict is Verdict.ESCALATE_PERSISTENCE


def simulate(cfg: OrgAerConfig, hours: int, every_minutes: int) -> list[Decision]:
    """A legitimate heavy searcher trips the scraping rule from each new session."""
    history, decisions, session = NO_HISTORY, [], 0
    for step in range(hours * 60 // every_minutes):
        now = NOW + timedelta(minutes=step * every_minutes)
        d = decide(anomaly("unexpected_scraping", session=f"S{session}"), cfg, history, now)
        decisions.append(d)
        if d.verdict is Verdict.RESET:
            history = UserHistory(now, frozenset({f"S{session}"}))
            session += 1  # the user logs in again
        elif d.verdict is Verdict.ESCALATE_PERSISTENCE:
            history = replace(history, escalated_sessions=frozenset({f"S{session}"}))
    return decisions


@pytest.mark.parametrize("cooldown", [1800.0, 86400.0])
def test_a_legitimate_user_is_not_reset_in_a_loop(cooldown: float) -> None:
    cfg = replace(DEFAULTS, cooldown=cooldown)
    decisions = simulate(cfg, hours=6, every_minutes=5)
    resets = [d for d in decisions if d.verdict is Verdict.RESET]
    limit = 6 * 3600 / max(cooldown, cfg.persistence_window) + 1
    assert 1 <= len(resets) <= limit
    assert any(d.verdict is Verdict.ESCALATE_PERSISTENCE for d in decisions)


# --- configuration -----------------------------------------------------------------------


def test_org_config_overrides_defaults_and_merges_responses() -> None:
    defaults = {"cooldown": "30m", "responses": {"excessive_downloads": "ask_user"}}
    org = {
        "persistence_window": "2h",
        "responses": {"tor": "notify_only"},
        "excluded_users": ["UBOT1"],
        "trusted_asns": ["AS7922"],
        "trusted_cidrs": ["10.0.0.0/8"],
        "notify": {"channel": "C0SEC", "primary_owner": False},
        "indicator_ips": ["203.0.113.9"],
    }
    cfg = merge_org_config(defaults, org, org_id="T0A")
    assert (cfg.cooldown, cfg.persistence_window) == (1800.0, 7200.0)
    assert cfg.responses["tor"] is Action.NOTIFY_ONLY
    assert cfg.responses["excessive_downloads"] is Action.ASK_USER
    assert cfg.responses["unexpected_scraping"] is Action.RESET_SESSIONS
    assert cfg.excluded_users == {"UBOT1"} and cfg.trusted_asns == {7922}
    assert (cfg.notify.channel, cfg.notify.primary_owner, cfg.notify.security_admins) == (
        "C0SEC", False, True,
    )  # fmt: skip
    detection = DetectionConfig.build(load_rules(), {"T0A": merged_org_mapping(defaults, org)})
    assert detection.for_org("T0A").trusted_asns == cfg.trusted_asns


@pytest.mark.parametrize(
    ("org", "match"),
    [
        ({"cooldwn": 5}, r"aer\.orgs\.T0A\.cooldwn: unknown key"),
        ({"cooldown": "soon"}, r"aer\.orgs\.T0A\.cooldown: must be a duration"),
        ({"persistence_window": 0}, r"aer\.orgs\.T0A\.persistence_window: must be > 0"),
        ({"enabled": "yes"}, r"aer\.orgs\.T0A\.enabled"),
        ({"responses": {"tor": "ban"}}, r"aer\.orgs\.T0A\.responses\.tor: must be one of"),
        ({"responses": {"dns": "ask_user"}}, r"responses\.dns: unknown anomaly type"),
        ({"excluded_users": ["alice"]}, r"excluded_users\[0\]: 'alice' is not a Slack user id"),
        ({"trusted_cidrs": ["10.0.0.0/33"]}, r"aer\.orgs\.T0A\.trusted_cidrs\[0\]"),
        ({"thresholds": {"search": {"flor": 1}}}, r"aer\.orgs\.T0A\.thresholds\.search\.flor"),
        ({"notify": {"channel": 5}}, r"aer\.orgs\.T0A\.notify\.channel"),
    ],
)
def test_config_errors_name_the_key(org: dict[str, Any], match: str) -> None:
    with pytest.raises(AerConfigError, match=match):
        merge_org_config({}, org, org_id="T0A")


def test_defaults_errors_name_the_defaults_key() -> None:
    with pytest.raises(AerConfigError, match=r"^aer\.defaults\.cooldown"):
        merge_org_config({"cooldown": -1}, None)
