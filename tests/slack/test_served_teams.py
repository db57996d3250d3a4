"""Which workspaces and Enterprise Grid orgs the app serves: the lists are the mechanism."""

from __future__ import annotations

import pytest

from securitybot.slack.teams import ServedTeams


@pytest.mark.parametrize(
    ("team", "enterprise", "reason"),
    [
        ("T1", None, None),
        ("T2", None, None),  # from slack.team_ids
        ("TOTHER", None, "foreign_team"),
        ("T1", "E1", None),
        ("T1", "E9", "foreign_enterprise"),  # a served team id claimed from another org
        (None, "E1", None),  # an org-wide install's payload that names no workspace
        (None, "E9", "foreign_enterprise"),
        (None, None, "no_team"),
    ],
)
def test_refusal(team: str | None, enterprise: str | None, reason: str | None) -> None:
    served = ServedTeams.from_config(["T2"], [])
    served.learn({"ok": True, "team_id": "T1", "enterprise_id": "E1", "user_id": "UBOT"})
    assert served.refusal(team, enterprise) == reason


def test_nothing_is_served_before_the_bots_team_is_known() -> None:
    served = ServedTeams()
    assert not served.known
    assert served.refusal("T1", None) == "foreign_team"
    served.learn({"team_id": "T1", "enterprise_id": None})
    assert served.known and served.refusal("T1", None) is None
