"""Enterprise Grid, installed org-wide: which workspaces the app was added to.

An org-wide install has one bot token for the whole org, but the app reaches only the
workspaces an Org Admin added it to ("An organization-wide app isn't automatically added to
every workspace in an organization", api.slack.com/enterprise/org-wide-apps).
``auth.test`` says whether the token is such an install (``is_enterprise_install``), and
``auth.teams.list`` lists those workspaces ("Obtain a full list of workspaces your org-wide app
has been approved for", docs.slack.dev/reference/methods/auth.teams.list). The gateway uses
the list to tell a person in one of them (DM as usual) from a person in none
(``not_reachable``: escalated, never silently dropped), and to pass ``team_id`` to the methods
that need one with an org-level token. It is learnt at start: adding the app to another
workspace takes a restart to be seen (the ``team_access_granted`` event is not handled yet).
"""

from __future__ import annotations

import logging
from typing import Any

from securitybot.slack.gateway import SlackGateway

logger = logging.getLogger(__name__)

MAX_PAGES = 100


async def list_workspaces(gateway: SlackGateway) -> frozenset[str]:
    """Every workspace the org-wide install was added to (auth.teams.list, all pages)."""
    teams: set[str] = set()
    cursor = ""
    for _ in range(MAX_PAGES):
        kw: dict[str, Any] = {"limit": 1000}
        if cursor:
            kw["cursor"] = cursor
        data = await gateway.client.auth_teams_list(**kw)
        teams.update(str(t["id"]) for t in data.get("teams") or [] if t.get("id"))
        cursor = str((data.get("response_metadata") or {}).get("next_cursor") or "")
        if not cursor:
            break
    return frozenset(teams)


async def learn_workspaces(gateway: SlackGateway, auth: dict[str, Any]) -> None:
    """After ``auth.test``: on an org-wide install, learn its workspaces; else nothing."""
    if not auth.get("is_enterprise_install"):
        return
    gateway.workspaces = await list_workspaces(gateway)
    logger.info(
        "Slack: org-wide install in enterprise %s, added to %s workspace(s): %s",
        auth.get("enterprise_id"), len(gateway.workspaces),
        ", ".join(sorted(gateway.workspaces)) or "none yet (add it to workspaces in the org's "
        "admin pages, Integrations → Installed apps)",
    )  # fmt: skip
