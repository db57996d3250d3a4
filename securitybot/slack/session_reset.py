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

from securitybot.i18n import ENGLISH, N_, Translator
from securitybot.slack import mrkdwn as md
from securitybot.slack.api_types import SlackPermanentError
from securitybot.slack.installations import Installations

METHOD = "admin.users.session.reset"
UNAVAILABLE = "session_reset_unavailable"

# Why nobody can reset a workspace's people, by a stable code (the audit log's ``why_code``):
# the team reads the phrase in its own language; ``why`` keeps the English for older readers.
NOT_INSTALLED = "not_installed"
NOT_GRID = "not_grid"
NO_ADMIN_USER_TOKEN = "no_admin_user_token"
WHY: dict[str, str] = {
    NOT_INSTALLED: N_("the workspace is not installed"),
    NOT_GRID: N_(
        "the workspace is not on Enterprise Grid (admin.users.session.reset is Grid only)"
    ),
    NO_ADMIN_USER_TOKEN: N_(
        "its installation has no user token with admin.users:write (an org admin installs "
        "with slack.oauth.user_scopes)"
    ),
}


class SessionResetUnavailable(SlackPermanentError):
    """No token can reset the sessions of people in ``team`` (named ``workspace``)."""

    def __init__(self, team: str, workspace: str, why: str, why_code: str | None = None) -> None:
        super().__init__(METHOD, UNAVAILABLE)
        self.team, self.workspace, self.why, self.why_code = team, workspace, why, why_code

    @classmethod
    def because(cls, team: str, workspace: str, why_code: str) -> SessionResetUnavailable:
        """The reason by its code, with its English text for ``why``."""
        return cls(team, workspace, WHY[why_code], why_code)

    def details(self) -> dict[str, str]:
        """For the audit log and the escalation post."""
        out = {"error": self.error, "team": self.team, "workspace": self.workspace,
               "why": self.why}  # fmt: skip
        if self.why_code is not None:
            out["why_code"] = self.why_code
        return out


def why_text(details: dict[str, object], t: Translator = ENGLISH) -> str:
    """The reason of ``details`` (an audit row's, :meth:`SessionResetUnavailable.details`) as
    mrkdwn in ``t``'s language: the phrase of its ``why_code``, else the stored English
    ``why`` (rows written before codes existed), shown as text."""
    code = details.get("why_code")
    if isinstance(code, str) and code in WHY:
        return t.gettext(WHY[code])
    return md.inline(details.get("why") or "", 200)


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
        raise SessionResetUnavailable.because(team, team, NOT_INSTALLED)
    if found.enterprise_id is None:  # whatever its token says, Slack would refuse it
        raise SessionResetUnavailable.because(team, found.name, NOT_GRID)
    if found.client is None:
        raise SessionResetUnavailable.because(team, found.name, NO_ADMIN_USER_TOKEN)
    return found.client
