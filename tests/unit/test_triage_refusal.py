"""Who may triage an escalation, decided without Slack or a database."""

from __future__ import annotations

from securitybot.slack.triage import REFUSALS, triage_refusal


def test_a_responder_may_triage_someone_elses_alert() -> None:
    assert triage_refusal("ULEAD", "UALICE", is_responder=True) is None
    assert triage_refusal("ULEAD", None, is_responder=True) is None  # user never resolved


def test_nobody_triages_an_alert_about_themselves() -> None:
    assert triage_refusal("ULEAD", "ULEAD", is_responder=True) == "self"
    assert "about yourself" in REFUSALS["self"]


def test_someone_outside_the_team_is_refused_first() -> None:
    assert triage_refusal("UMALLORY", "UMALLORY", is_responder=False) == "not a responder"
    assert triage_refusal("UMALLORY", "UALICE", is_responder=False) == "not a responder"
