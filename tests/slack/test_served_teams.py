"""Which workspaces and Enterprise Grid orgs the app serves: the lists are the mechanism."""

from __future__ import annotations

import asyncio
import json

import pytest
from slack_bolt.async_app import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from securitybot.demo import FakeSlack
from securitybot.slack.teams import HomeIdentity, ServedTeams, TeamGuard
from securitybot.store.db import Database


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


async def test_a_workspace_installed_from_another_grid_org_is_served(db: Database) -> None:
    """Our own workspace is on Enterprise Grid (E1); Green, installed through OAuth, is in
    another org. Its people's clicks were refused as foreign_enterprise before the guard asked
    whether the workspace is installed (the very case the session reset by its installer's
    token is for); a stranger's workspace of that org still is refused."""
    served = ServedTeams({"T1"}, {"E1"})

    async def installed(team: str) -> bool:
        return team == "TGREEN"

    guard = TeamGuard(served, db, installed)

    async def process(team: str) -> int:
        body = {
            "type": "block_actions",
            "team": {"id": team, "enterprise_id": "EGREEN"},
            "user": {"id": "UCAROL", "team_id": team},
            "enterprise": {"id": "EGREEN"},
        }
        req = AsyncBoltRequest(body=json.dumps(body), mode="socket_mode",
                               headers={"content-type": ["application/json"]})  # fmt: skip
        done = BoltResponse(status=200, body="")

        async def nxt() -> BoltResponse:
            return done

        answer = await guard.async_process(req=req, resp=BoltResponse(status=200), next=nxt)
        assert answer is not None
        return answer.status

    assert await process("TGREEN") == 200
    assert await process("TSTRANGER") == 403
