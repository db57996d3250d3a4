"""Slack's documented example answers, verbatim, for the fake Slack and the tests.

``USERS_LIST``: users.list, "Typical success response"
(https://docs.slack.dev/reference/methods/users.list; the same example in Slack's OpenAPI
spec, slackapi/slack-api-specs web-api/slack_web_openapi_v2.json, paths./users.list).
"""

from __future__ import annotations

from typing import Any

USERS_LIST: dict[str, Any] = {
    "cache_ts": 1498777272,
    "members": [
        {
            "color": "9f69e7",
            "deleted": False,
            "has_2fa": False,
            "id": "W012A3CDE",
            "is_admin": True,
            "is_app_user": False,
            "is_bot": False,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "name": "spengler",
            "profile": {
                "avatar_hash": "ge3b51ca72de",
                "display_name": "spengler",
                "display_name_normalized": "spengler",
                "email": "spengler@ghostbusters.example.com",
                "image_192": "https://.../avatar/e3b51ca72dee4ef87916ae2b9240df50.jpg",
                "image_24": "https://.../avatar/e3b51ca72dee4ef87916ae2b9240df50.jpg",
                "image_32": "https://.../avatar/e3b51ca72dee4ef87916ae2b9240df50.jpg",
                "image_48": "https://.../avatar/e3b51ca72dee4ef87916ae2b9240df50.jpg",
                "image_512": "https://.../avatar/e3b51ca72dee4ef87916ae2b9240df50.jpg",
                "image_72": "https://.../avatar/e3b51ca72dee4ef87916ae2b9240df50.jpg",
                "real_name": "Egon Spengler",
                "real_name_normalized": "Egon Spengler",
                "status_emoji": ":books:",
                "status_text": "Print is dead",
                "team": "T012AB3C4",
            },
            "real_name": "spengler",
            "team_id": "T012AB3C4",
            "tz": "America/Los_Angeles",
            "tz_label": "Pacific Daylight Time",
            "tz_offset": -25200,
            "updated": 1502138686,
        },
        {
            "color": "9f69e7",
            "deleted": False,
            "has_2fa": False,
            "id": "W07QCRPA4",
            "is_admin": True,
            "is_bot": False,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "name": "glinda",
            "profile": {
                "avatar_hash": "8fbdd10b41c6",
                "display_name": "Glinda the Fairly Good",
                "display_name_normalized": "Glinda the Fairly Good",
                "email": "glenda@south.oz.coven",
                "first_name": "Glinda",
                "image_1024": "https://a.slack-edge.com...png",
                "image_192": "https://a.slack-edge.com...png",
                "image_24": "https://a.slack-edge.com...png",
                "image_32": "https://a.slack-edge.com...png",
                "image_48": "https://a.slack-edge.com...png",
                "image_512": "https://a.slack-edge.com...png",
                "image_72": "https://a.slack-edge.com...png",
                "image_original": "https://a.slack-edge.com...png",
                "last_name": "Southgood",
                "phone": "",
                "real_name": "Glinda Southgood",
                "real_name_normalized": "Glinda Southgood",
                "skype": "",
                "title": "Glinda the Good",
            },
            "real_name": "Glinda Southgood",
            "team_id": "T0G9PQBBK",
            "tz": "America/Los_Angeles",
            "tz_label": "Pacific Daylight Time",
            "tz_offset": -25200,
            "updated": 1480527098,
        },
    ],
    "ok": True,
    "response_metadata": {"next_cursor": "dXNlcjpVMEc5V0ZYTlo="},
}

# oauth.v2.access, "Example response" (https://docs.slack.dev/reference/methods/oauth.v2.access;
# the same example in Slack's OpenAPI spec, slackapi/slack-api-specs
# web-api/slack_web_openapi_v2.json, paths./oauth.v2.access, "Successful token request with
# scopes for both a bot user and a user token").
OAUTH_V2_ACCESS: dict[str, Any] = {
    "access_token": "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy",
    "app_id": "A0KRD7HC3",
    "authed_user": {
        "access_token": "xoxp-1234",
        "id": "U1234",
        "scope": "chat:write",
        "token_type": "user",
    },
    "bot_user_id": "U0KRQLJ9H",
    "enterprise": {"id": "E12345678", "name": "slack-sports"},
    "ok": True,
    "scope": "commands,incoming-webhook",
    "team": {"id": "T9TK3CUKW", "name": "Slack Softball Team"},
    "token_type": "bot",
}
# With token rotation on, the same answer also carries "refresh_token" (an xoxe-1- token, the
# argument's documented example "xoxe-1-abcdefg") and "expires_in" (seconds; "With token
# rotation, it expires every 12 hours": docs.slack.dev/authentication/using-token-rotation);
# asked with grant_type=refresh_token, oauth.v2.access answers a new pair the same way.
TOKEN_LIFETIME = 43200
