"""The user object the fake Slack keeps for each person, shaped as Slack documents it
(docs.slack.dev/reference/objects/user-object), with the Grid block when there is an org."""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from securitybot.demo.fake_slack_methods import Json


def user_object(
    user_id: str,
    email: str,
    *,
    name: str | None,
    real_name: str | None,
    first_name: str | None,
    tz: str,
    deleted: bool,
    is_bot: bool,
    is_admin: bool,
    is_owner: bool,
    is_primary_owner: bool,
    teams: list[str],
    enterprise_id: str | None,
) -> Json:
    """``teams``: the workspaces the person belongs to, their home first."""
    name = name or email.split("@")[0]
    home = teams[0]
    real_name = real_name or name
    try:
        offset = datetime.now(ZoneInfo(tz)).utcoffset()
    except ZoneInfoNotFoundError:
        offset = None
    user: Json = {
        "id": user_id,
        "team_id": home,
        "name": name,
        "deleted": deleted,
        "real_name": real_name,
        "tz": tz,
        "tz_label": tz,
        "tz_offset": int(offset.total_seconds()) if offset else 0,
        "is_admin": is_admin or is_owner or is_primary_owner,
        "is_owner": is_owner or is_primary_owner,
        "is_primary_owner": is_primary_owner,
        "is_restricted": False,
        "is_ultra_restricted": False,
        "is_bot": is_bot,
        "is_app_user": False,
        "updated": int(time.time()),
        "profile": {
            "real_name": real_name,
            "display_name": name,
            "first_name": first_name or real_name.split(" ")[0],
            "last_name": " ".join(real_name.split(" ")[1:]),
            "email": email,
            "team": home,
        },
    }
    if enterprise_id:
        # docs.slack.dev/reference/objects/user-object: "enterprise_user: An object
        # containing info related to an Enterprise Grid user", with the org's id and name,
        # admin and owner flags, and "teams: An array of workspace IDs that are in the
        # Enterprise Grid organization and which this user belongs to".
        user["enterprise_user"] = {
            "id": user_id, "enterprise_id": enterprise_id,
            "enterprise_name": "Fake Org", "is_admin": is_admin, "is_owner": is_owner,
            "teams": list(teams),
        }  # fmt: skip
    return user
