"""escalation.routes: which channel an escalation goes to, by the person's workspace or org."""

from __future__ import annotations

import pytest

from securitybot.config import EscalationRoute, Settings
from securitybot.slack.gateway import SlackUser, _user_from
from securitybot.slack.routes import route_for

ROUTES = [
    EscalationRoute(enterprise_id="E1", channel="CORG"),
    EscalationRoute(team_id="T2", channel="CEU", responders=["WEULEAD"]),
    EscalationRoute(team_id="T3", channel="CUS"),
]


def _grid_user(teams: list[str], enterprise: str = "E1") -> SlackUser:
    # users.info on Enterprise Grid (docs.slack.dev/reference/objects/user-object):
    # enterprise_user names the org and the workspaces the person belongs to.
    return _user_from({
        "id": "W012A3CDE", "team_id": teams[0], "name": "spengler",
        "profile": {"real_name": "Egon Spengler", "email": "spengler@ghostbusters.example.com"},
        "enterprise_user": {"id": "W012A3CDE", "enterprise_id": enterprise,
                            "enterprise_name": "Ghostbusters", "is_admin": False,
                            "is_owner": False, "teams": teams},
    })  # fmt: skip


@pytest.mark.parametrize(
    ("teams", "enterprise", "channel"),
    [
        (["T2"], "E1", "CEU"),  # a workspace route beats the org's, even listed after it
        (["T1", "T3"], "E1", "CUS"),  # any of the person's workspaces
        (["T1"], "E1", "CORG"),  # no workspace route: the org's
        (["T1"], "E9", None),  # another org: the default channel
    ],
)
def test_a_workspace_route_beats_an_org_route(
    teams: list[str], enterprise: str, channel: str | None
) -> None:
    route = route_for(ROUTES, _grid_user(teams, enterprise))
    assert (route.channel if route else None) == channel


def test_a_plain_workspace_user_is_routed_by_their_team_id() -> None:
    # users.info on a workspace without Grid: team_id only, no enterprise_user.
    user = _user_from({"id": "U1", "team_id": "T3", "name": "a", "profile": {}})
    assert user.teams == ("T3",) and user.enterprise is None
    route = route_for(ROUTES, user)
    assert route is not None and route.channel == "CUS"
    assert route_for(ROUTES, None) is None


def test_a_route_names_exactly_one_of_team_and_org() -> None:
    with pytest.raises(ValueError, match="exactly one of team_id"):
        Settings.model_validate(
            {"escalation": {"routes": [{"team_id": "T1", "enterprise_id": "E1", "channel": "C1"}]}}
        )
    with pytest.raises(ValueError, match="is not a Slack user"):
        Settings.model_validate(
            {"escalation": {"routes": [{"team_id": "T1", "channel": "C1", "responders": ["x"]}]}}
        )
