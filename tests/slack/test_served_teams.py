"""Which workspaces and Enterprise Grid orgs the app serves: the lists are the mechanism."""

from __future__ import annotations

import asyncio

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from securitybot.demo import FakeSlack
from securitybot.slack.teams import HomeIdentity, ServedTeams


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


@pytest.mark.parametrize(
    ("team", "enterprise", "org_wide", "reason"),
    [
        # Enterprise Grid, org-wide install: any workspace of our org the app was added to.
        ("T7", "E1", True, None),
        # The same workspace through a per-workspace install of the app: not configured.
        ("T7", "E1", False, "foreign_team"),
        # Another org's org-wide install of the app is never ours.
        ("T7", "E9", True, "foreign_enterprise"),
        ("T7", None, True, "foreign_team"),
    ],
)
def test_an_org_wide_install_serves_every_workspace_of_its_org(
    team: str, enterprise: str | None, org_wide: bool, reason: str | None
) -> None:
    served = ServedTeams()
    # auth.test for an org-wide install's bot token (is_enterprise_install: true).
    served.learn({"ok": True, "team_id": "E1", "enterprise_id": "E1", "user_id": "UBOT",
                  "is_enterprise_install": True})  # fmt: skip
    assert served.refusal(team, enterprise, org_wide) == reason


async def test_the_bots_own_team_is_asked_again_until_slack_answers() -> None:
    """The start-up auth.test failed: the next ask tries again (one call for every caller
    meanwhile), and once it answers, Slack is not asked again."""
    with FakeSlack(team_id="T1") as fs:
        # auth.test's documented transient error (docs.slack.dev/reference/methods/auth.test).
        fs.fail_next("auth.test", error="internal_error")
        served = ServedTeams()
        home = HomeIdentity(AsyncWebClient(token="xoxb-test", base_url=fs.base_url), served)
        told: list[str] = []
        home.learned.append(lambda auth: told.append(str(auth["team_id"])))
        with pytest.raises(SlackApiError):
            await home.auth()
        assert not served.known and told == []
        first, second = await asyncio.gather(home.auth(), home.auth())
        assert first["team_id"] == second["team_id"] == "T1"
        assert served.refusal("T1", None) is None and told == ["T1"]
        await home.auth()
        assert len(fs.calls_to("auth.test")) == 2
