"""Whose token resets a person's Slack sessions (``admin.users.session.reset``).

The method is an Enterprise Grid admin API: "This API method can only be used on Enterprise
Grid workspaces" and answers ``feature_not_enabled`` ("This method is not available for this
product level") elsewhere (api.slack.com/methods/admin.users.session.reset). It takes an org
admin's user token with ``admin.users:write``, and that org's people only. So:

* a person of the home workspace (or of the home Grid org): ``slack.admin_token``;
* a person of a workspace installed through OAuth: the user token its installer granted, when
  it has ``admin.users:write`` (an org admin of another Grid org, ``slack.oauth.user_scopes``);
* otherwise nobody can: :class:`SessionResetUnavailable`, raised before any call, names the
  workspace, so the confirmed compromise (or AER) says why instead of Slack refusing a token
  that was never going to work.
"""

from __future__ import annotations

from collections.abc import Iterable

from slack_sdk.web.async_client import AsyncWebClient

from securitybot.slack.api_types import SlackPermanentError
from securitybot.slack.installations import Installations

METHOD = "admin.users.session.reset"
UNAVAILABLE = "session_reset_unavailable"


class SessionResetUnavailable(SlackPermanentError):
    """No token can reset the sessions of people in ``team`` (named ``workspace``)."""

    def __init__(self, team: str, workspace: str, why: str) -> None:
        super().__init__(METHOD, UNAVAILABLE)
        self.team, self.workspace, self.why = team, workspace, why

    def details(self) -> dict[str, str]:
        """For the audit log and the escalation post."""
        return {"error": self.error, "team": self.team, "workspace": self.workspace,
                "why": self.why}  # fmt: skip


def installed_team(teams: Iterable[str], installed: Iterable[str], home: str | None) -> str | None:
    """The installed workspace a person of ``teams`` is reset through; None when they are the
    home workspace's (or nothing is known of them: the home org's admin token, as ever)."""
    teams, served = list(teams), set(installed)
    if not teams or (home is not None and home in teams):
        return None
    return next((t for t in teams if t in served), None)


async def reset_client(installations: Installations, team: str) -> AsyncWebClient:
    """``team``'s client with an admin user token, or :class:`SessionResetUnavailable`."""
    found = await installations.admin_user(team)
    if found is None:
        raise SessionResetUnavailable(team, team, "the workspace is not installed")
    if found.enterprise_id is None:  # whatever its token says, Slack would refuse it
        why = "the workspace is not on Enterprise Grid (admin.users.session.reset is Grid only)"
        raise SessionResetUnavailable(team, found.name, why)
    if found.client is None:
        why = ("its installation has no user token with admin.users:write (an org admin "
               "installs with slack.oauth.user_scopes)")  # fmt: skip
        raise SessionResetUnavailable(team, found.name, why)
    return found.client
