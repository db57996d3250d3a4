"""Events API requests as Slack POSTs them to /slack/events (messages in the DM, their deletion
and edits, the Home tab opening, directory changes, uninstalls and revoked tokens), so Bolt's
body parsing and listener matching run unmodified in tests and the demo. Sign them with
``slack_signing.sign``."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any


def new_ts() -> str:
    return f"{time.time():.6f}"


def _event_callback(
    event: dict[str, Any],
    team: str,
    event_id: str | None,
    bot_user_id: str,
    api_app_id: str,
    enterprise: str | None = None,
) -> str:
    """The Events API wrapper around one event, as Slack POSTs it. ``enterprise``: delivered
    to an org-wide install, whose ``authorizations`` entry names the org and says
    ``is_enterprise_install: true`` (api.slack.com/enterprise/apps/reference, "Sample event
    payload")."""
    body: dict[str, Any] = {
        "token": "legacy-verification-token",
        "team_id": team,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or "Ev" + uuid.uuid4().hex[:10].upper(),
        "event_time": int(float(event["event_ts"])),
        "authorizations": [
            {
                "enterprise_id": enterprise,
                "team_id": team,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": enterprise is not None,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-" + uuid.uuid4().hex,
    }
    return json.dumps(body)


def message_event_body(
    user: str,
    text: str,
    channel: str,
    team: str = "T1",
    event_id: str | None = None,
    ts: str | None = None,
    bot_user_id: str = "UBOT",
    api_app_id: str = "A1",
    enterprise: str | None = None,
) -> str:
    """An event_callback for a DM ("im") message from `user`; ``enterprise``: to an org-wide
    install in that Enterprise Grid org."""
    ts = ts or new_ts()
    event: dict[str, Any] = {
        "type": "message",
        "client_msg_id": str(uuid.uuid4()),
        "user": user,
        "text": text,
        "ts": ts,
        "team": team,
        "channel": channel,
        "event_ts": ts,
        "channel_type": "im",
    }
    return _event_callback(event, team, event_id, bot_user_id, api_app_id, enterprise)


def message_deleted_body(
    channel: str,
    deleted_ts: str,
    previous_message: dict[str, Any] | None = None,
    team: str = "T1",
    event_id: str | None = None,
    bot_user_id: str = "UBOT",
    api_app_id: str = "A1",
) -> str:
    """A message in the DM was deleted. Shape from Slack's reference for the message_deleted
    subtype (docs.slack.dev/reference/events/message/message_deleted): hidden, no top-level
    user, ``deleted_ts`` naming the deleted message and ``previous_message`` holding it."""
    ts = new_ts()
    event: dict[str, Any] = {
        "type": "message",
        "subtype": "message_deleted",
        "hidden": True,
        "channel": channel,
        "ts": ts,
        "deleted_ts": deleted_ts,
        "event_ts": ts,
        "channel_type": "im",
    }
    if previous_message is not None:
        event["previous_message"] = previous_message
    return _event_callback(event, team, event_id, bot_user_id, api_app_id)


def message_changed_body(
    user: str,
    channel: str,
    message_ts: str,
    text: str,
    previous_text: str,
    team: str = "T1",
    event_id: str | None = None,
    bot_user_id: str = "UBOT",
    api_app_id: str = "A1",
    bot_id: str | None = None,
) -> str:
    """`user` edited their DM message `message_ts`. Shape from Slack's reference for the
    message_changed subtype (docs.slack.dev/reference/events/message/message_changed): the new
    message under ``message`` (with ``edited``), the old one under ``previous_message``."""
    ts = new_ts()
    old = {"type": "message", "user": user, "text": previous_text, "ts": message_ts,
           "team": team, **({"bot_id": bot_id} if bot_id else {})}  # fmt: skip
    event: dict[str, Any] = {
        "type": "message",
        "subtype": "message_changed",
        "hidden": True,
        "channel": channel,
        "ts": ts,
        "event_ts": ts,
        "channel_type": "im",
        "message": {**old, "text": text, "edited": {"user": user, "ts": ts}},
        "previous_message": old,
    }
    return _event_callback(event, team, event_id, bot_user_id, api_app_id)


def app_home_opened_body(
    user: str,
    tab: str = "home",
    team: str = "T1",
    event_id: str | None = None,
    bot_user_id: str = "UBOT",
    api_app_id: str = "A1",
    enterprise: str | None = None,
) -> str:
    """The user opened the app's Home tab. Shape from Slack's reference for app_home_opened
    (api.slack.com/events/app_home_opened); ``view`` appears once a Home was published, and
    is left out here as on a first visit."""
    ts = new_ts()
    event: dict[str, Any] = {
        "type": "app_home_opened", "user": user, "channel": "D" + user, "tab": tab,
        "event_ts": ts,
    }  # fmt: skip
    return _event_callback(event, team, event_id, bot_user_id, api_app_id, enterprise)


def user_change_body(user: dict[str, Any], team: str = "T1", event_id: str | None = None,
                     bot_user_id: str = "UBOT", api_app_id: str = "A1") -> str:  # fmt: skip
    """A member's data changed: the whole user object as users.list has it (shape from
    docs.slack.dev/reference/events/user_change, "Example payload": user, cache_ts, event_ts)."""
    ts = new_ts()
    event = {"type": "user_change", "user": user, "cache_ts": int(float(ts)), "event_ts": ts}
    return _event_callback(event, team, event_id, bot_user_id, api_app_id)


def team_join_body(user: dict[str, Any], team: str = "T1", event_id: str | None = None,
                   bot_user_id: str = "UBOT", api_app_id: str = "A1") -> str:  # fmt: skip
    """A new member joined (docs.slack.dev/reference/events/team_join: type, user, the user
    object)."""
    event = {"type": "team_join", "user": user, "event_ts": new_ts()}
    return _event_callback(event, team, event_id, bot_user_id, api_app_id)


def _revocation(event: dict[str, Any], team: str, api_app_id: str) -> str:
    return json.dumps({
        "token": "legacy-verification-token", "team_id": team, "api_app_id": api_app_id,
        "event": event, "type": "event_callback",
        "event_id": "Ev" + uuid.uuid4().hex[:10].upper(), "event_time": int(time.time()),
    })  # fmt: skip


def app_uninstalled_body(team: str, api_app_id: str = "A1") -> str:
    """The app was uninstalled from ``team`` (docs.slack.dev/reference/events/app_uninstalled,
    "Example": an event_callback whose event is just ``{"type": "app_uninstalled"}``)."""
    return _revocation({"type": "app_uninstalled"}, team, api_app_id)


def tokens_revoked_body(team: str, bot: list[str], oauth: list[str] | None = None,
                        api_app_id: str = "A1") -> str:  # fmt: skip
    """Tokens of ``team`` were revoked (docs.slack.dev/reference/events/tokens_revoked,
    "Example": ``tokens`` lists the user ids whose ``oauth`` (user) and ``bot`` tokens went)."""
    event = {"type": "tokens_revoked", "tokens": {"oauth": oauth or [], "bot": bot}}
    return _revocation(event, team, api_app_id)
